#!/usr/bin/env bash
# The agent's cost: ships a file of N MB (default 500) of ~120-byte lines to a local node as fast as it can, then a
# file written at 5 MB/s for 30 s, and prints the agent's CPU seconds (from /proc), MB per CPU-second, its peak RSS
# and its share of a core at 5 MB/s. Usage: bench/agent.sh [MB]. Needs a Release build (dotnet build -c Release).
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-500}
DLL=src/Logwell/bin/Release/net10.0/logwell.dll
WORK=$(mktemp -d /tmp/logwell-agent-bench.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/logs"
dotnet "$DLL" serve --data "$WORK/node" --urls "http://127.0.0.1:$PORT" --environment Production >"$WORK/node.log" 2>&1 &
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do sleep 0.2; done
curl -sf -XPOST "http://127.0.0.1:$PORT/api/v1/indexsets" -H 'Content-Type: application/json' -d '{"name":"bulk"}' >/dev/null
curl -sf -XPOST "http://127.0.0.1:$PORT/api/v1/indexsets" -H 'Content-Type: application/json' -d '{"name":"steady"}' >/dev/null
python3 - "$WORK/logs/bulk.log" "$MB" <<'PY'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
line = " INFO  [http-nio-8080-exec-7] c.e.checkout.PaymentService - payment accepted order={} amount=42.10 user=u{}\n"
with open(path, "w") as f:
    i, written = 0, 0
    while written < mb * 1_000_000:
        text = "".join("2026-12-07 10:00:00,%03d" % (n % 1000) + line.format(n, n % 977) for n in range(i, i + 10000))
        f.write(text); written += len(text); i += 10000
print(i, file=open(path + ".count", "w"))
PY
LINES=$(cat "$WORK/logs/bulk.log.count")
BYTES=$(stat -c %s "$WORK/logs/bulk.log")
cat >"$WORK/agent.yaml" <<YAML
data_dir: $WORK/agent
output:
  urls: [http://127.0.0.1:$PORT]
inputs:
  - paths: [$WORK/logs/bulk.log]
    index_set: bulk
    start_at: beginning
  - paths: [$WORK/logs/steady.log]
    index_set: steady
    start_at: beginning
YAML
count() { curl -sf "http://127.0.0.1:$PORT/api/v1/search?indexset=$1&limit=0&track_total_hits=true" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
start=$(date +%s.%N)
dotnet "$DLL" agent -c "$WORK/agent.yaml" >"$WORK/agent.log" 2>&1 &
AGENT=$!
until [ "$(count bulk)" -ge "$LINES" ]; do sleep 0.5; done
end=$(date +%s.%N)
bulk_cpu=$(cpu $AGENT)
python3 - "$BYTES" "$LINES" "$start" "$end" "$bulk_cpu" "$TICK" <<'PY'
import sys
b, lines, s, e, cpu, tick = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
secs = cpu / tick
print(f"bulk: {b/1e6:.0f} MB, {lines} lines in {e-s:.1f} s wall ({b/1e6/(e-s):.1f} MB/s); agent CPU {secs:.1f} s: {b/1e6/secs:.1f} MB per CPU-second")
PY
# Steady: 5 MB/s for 30 s, written in 100 ms steps; the agent's CPU over that window.
before=$(cpu $AGENT)
python3 - "$WORK/logs/steady.log" <<'PY'
import sys, time
line = "2026-12-07 10:00:00,000 INFO  [worker-3] c.e.orders.Queue - order {} queued for shipping region=eu-west-1 weight=1.25\n"
n, t0 = 0, time.monotonic()
with open(sys.argv[1], "a") as f:
    for step in range(300):
        chunk = "".join(line.format(n + k) for k in range(4300))  # ~0.5 MB per 100 ms
        n += 4300; f.write(chunk); f.flush()
        time.sleep(max(0, t0 + (step + 1) * 0.1 - time.monotonic()))
print(n, file=open(sys.argv[1] + ".count", "w"))
PY
after=$(cpu $AGENT)
STEADY=$(cat "$WORK/logs/steady.log.count")
until [ "$(count steady)" -ge "$STEADY" ]; do sleep 0.5; done
python3 - "$before" "$after" "$TICK" "$(stat -c %s "$WORK/logs/steady.log")" <<'PY'
import sys
before, after, tick, b = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f"steady: {b/1e6/30:.1f} MB/s for 30 s; agent CPU {(after-before)/tick:.2f} s = {100*(after-before)/tick/30:.1f}% of a core")
PY
echo "agent peak RSS: $(awk '/VmHWM/ {print $2/1024 " MB"}' /proc/$AGENT/status); now $(awk '/VmRSS/ {print $2/1024 " MB"}' /proc/$AGENT/status)"
