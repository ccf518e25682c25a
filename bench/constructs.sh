#!/usr/bin/env bash
# Latency of each query construct and pipe through the HTTP API of a running Logwell.
# usage: bench/constructs.sh [URL] [INDEXSET]   (default http://127.0.0.1:5080 and bench, the harness's index set)
# Each line: the median of 7 timed requests after 3 untimed ones, and the answer's total (or its number of rows).
set -euo pipefail
url=${1:-http://127.0.0.1:5080}
indexset=${2:-bench}
queries=(
  'level:(ERROR OR WARN)'
  'service:auth AND NOT level:INFO'
  '"connection reset" OR timeout'
  'host:web-1*'
  'host:=web-1'
  'NOT level:=INFO'
  'upstraem~1'
  'upstream~2'
  'message:timeuot~1'
  'level:EROR~1'
  'paymnet~'
  'conn~2'
  'port~1'
  '5003~1'
  '"connection by"~1'
  '"reset connection"~2'
  '"upstream timeout"~5'
  '/upstre.m/'
  '/re(set|try)/'
  'message:/.*peer/'
  '_exists_:trace_id'
  '@timestamp:[2026-11-21T00:00:00Z TO 2026-11-21T01:00:00Z}'
  '* | stats count() by level'
  '* | stats count() by service, level'
  '* | stats count_distinct(host) by service'
  '* | timechart span=1h count()'
  '* | timechart span=auto count() by level'
  '* | top 5 host'
  '* | rare 3 service'
  'level:ERROR | stats count() as n by host | where n > 7900 | sort by n desc | head 3'
  '* | sort by host asc | head 10'
)
encode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
# Equality on a field with a value per event: the newest event's trace id.
trace_id=$(curl -sf "$url/api/v1/search?indexset=$indexset&limit=1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["hits"][0]["fields"].get("trace_id", "none"))')
queries+=("trace_id:=$trace_id")
measure() {
  local target=$1 times=()
  for _ in 1 2 3; do curl -sf -o /dev/null "$target"; done
  for _ in 1 2 3 4 5 6 7; do times+=("$(curl -sf -o /tmp/logwell-construct.json -w '%{time_total}' "$target")"); done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 4p
}
answer() { python3 -c 'import json; d = json.load(open("/tmp/logwell-construct.json")); print(d["total"] if "total" in d else str(len(d["rows"])) + " rows")'; }
printf '| query | extra | p50 ms | answer |\n|---|---|---|---|\n'
for q in "${queries[@]}"; do
  t=$(measure "$url/api/v1/search?indexset=$indexset&limit=100&track_total_hits=true&q=$(encode "$q")")
  printf '| `%s` | | %.1f | %s |\n' "${q//|/\\|}" "$(python3 -c "print($t * 1000)")" "$(answer)"
done
for sort in host:asc trace_id:desc trace_id:asc message:asc message:desc; do
  t=$(measure "$url/api/v1/search?indexset=$indexset&limit=100&sort=$sort&q=*")
  printf '| `*` | `sort=%s` | %.1f | %s |\n' "$sort" "$(python3 -c "print($t * 1000)")" "$(answer)"
done
