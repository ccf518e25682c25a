#!/usr/bin/env bash
# Logwell's file agent against rsyslog (imfile -> omelasticsearch) on the same files on the same machine, both shipping
# to a local Logwell node's Elasticsearch-compatible /_bulk endpoint. Each shipper runs alone, against a fresh node:
# N MB (default 200) of ~130-byte numbered lines in 4 files as fast as it can, then a file written at 5 MB/s for 20 s.
# Prints per shipper the wall time until every line is counted in Logwell, its CPU seconds (from /proc), MB per
# CPU-second, peak RSS, its share of a core at 5 MB/s and the events counted against the lines written (totals: a
# missing line and a duplicated one would cancel out).
# Usage: bench/agent-vs-rsyslog.sh [MB]. Needs a Release build (dotnet build -c Release; LOGWELL_DLL overrides the
# path) and Debian's rsyslog and rsyslog-elasticsearch packages.
#   SHIPPERS      the rows, default "rsyslog rsyslog-default agent-es agent": rsyslog with an action queue of 100000
#                 events and RSYSLOG_BATCH events per bulk request; rsyslog-default with rsyslog's own queue sizes
#                 (1000 events, 128 per request, ~30 KB); agent-es the agent with output.protocol elasticsearch;
#                 agent the agent with its native protocol. Its batches are 1 MiB of JSON, gzip-compressed.
#   RSYSLOG_BATCH queue.dequeueBatchSize of the rsyslog row, default 4096 (~1 MiB of JSON, as the agent's batches).
# "node CPU s" is what the Logwell node spent taking the bulk files in: it shares the machine's cores with the shipper.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-200}
DLL=${LOGWELL_DLL:-src/Logwell/bin/Release/net10.0/logwell.dll}
SHIPPERS=${SHIPPERS:-rsyslog rsyslog-default agent-es agent}
RSYSLOG_BATCH=${RSYSLOG_BATCH:-4096}
STEADY_SECS=20
STALL_SECS=30   # a count that stops moving for this long ends the wait: the rest is missing

RSYSLOGD=/usr/sbin/rsyslogd
if [ ! -x "$RSYSLOGD" ]; then
    echo "$RSYSLOGD is missing: apt-get install rsyslog rsyslog-elasticsearch" >&2; exit 1
fi
if ! compgen -G "/usr/lib/*/rsyslog/omelasticsearch.so" >/dev/null && [ ! -f /usr/lib/rsyslog/omelasticsearch.so ]; then
    echo "rsyslog's omelasticsearch.so is missing: apt-get install rsyslog-elasticsearch" >&2; exit 1
fi
if [ ! -f "$DLL" ]; then
    echo "$DLL is missing: dotnet build -c Release src/Logwell/Logwell.csproj (or set LOGWELL_DLL)" >&2; exit 1
fi
for tool in curl python3; do
    command -v $tool >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done
DLL=$(realpath "$DLL")

WORK=$(mktemp -d /tmp/logwell-agent-vs-rsyslog.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}" $(jobs -p); do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
TICK=$(getconf CLK_TCK)

# utime + stime (fields 14 and 15) of all the process' threads, read after the name, which may hold spaces.
cpu() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
hwm() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# The same files for every shipper: 4 bulk files (hard-linked into each run's directory), lines numbered across them.
mkdir -p "$WORK/data"
python3 - "$WORK/data" "$MB" <<'PY'
import sys
root, mb = sys.argv[1], int(sys.argv[2])
line = " INFO  [http-nio-8080-exec-7] c.e.checkout.PaymentService - payment accepted order={} amount=42.10 user=u{}\n"
n = 0
for part in range(4):
    with open(f"{root}/bulk-{part}.log", "w") as f:
        written = 0
        while written < mb * 1_000_000 // 4:
            text = "".join("2026-12-07 10:00:00,%03d" % (k % 1000) + line.format(k, k % 977) for k in range(n, n + 10000))
            f.write(text); written += len(text); n += 10000
print(n, file=open(f"{root}/bulk.count", "w"))
PY
BULK_LINES=$(cat "$WORK/data/bulk.count")
BULK_BYTES=$(cat "$WORK/data"/bulk-*.log | wc -c)
echo "files: 4 x $((BULK_BYTES / 4000000)) MB, $BULK_LINES lines; then ${STEADY_SECS} s at 5 MB/s; work directory $WORK" >&2

# The steady writer: 5 MB/s (0.5 MB per 100 ms step), the same numbered lines for every shipper.
steady_write() {
    python3 - "$1" "$STEADY_SECS" <<'PY'
import sys, time
path, secs = sys.argv[1], int(sys.argv[2])
line = "2026-12-07 10:00:00,000 INFO  [worker-3] c.e.orders.Queue - order {} queued for shipping region=eu-west-1 weight=1.25\n"
n, t0 = 0, time.monotonic()
with open(path, "a") as f:
    for step in range(secs * 10):
        chunk = "".join(line.format(n + k) for k in range(4200))  # ~0.5 MB
        n += 4200; f.write(chunk); f.flush()
        time.sleep(max(0, t0 + (step + 1) * 0.1 - time.monotonic()))
print(n, file=open(path + ".count", "w"))
PY
}

rsyslog_conf() { # DIR PORT INDEX QUEUE
    cat <<CONF
# Only what is needed: no imuxsock, no imklog, no default rules.
global(workDirectory="$1/rsyslog")
module(load="imfile")   # inotify mode (the default)
module(load="omelasticsearch")
# The fields the agent sends: when read, the line (JSON-escaped), host, file, offset.
template(name="doc" type="list" option.jsonf="on") {
    property(outname="@timestamp" name="timegenerated" dateFormat="rfc3339" format="jsonf")
    property(outname="message" name="msg" format="jsonf")
    property(outname="host" name="hostname" format="jsonf")
    property(outname="file" name="\$!metadata!filename" format="jsonf")
    property(outname="offset" name="\$!metadata!fileoffset" format="jsonf" dataType="number")
}
input(type="imfile" File="$1/logs/*.log" Tag="bench" ruleset="ship" addMetadata="on" freshStartTail="off")
ruleset(name="ship") {
    action(type="omelasticsearch" server="127.0.0.1" serverport="$2" usehttps="off" searchIndex="$3"
           esVersion.major="8" bulkmode="on" template="doc" errorfile="$1/rsyslog/es-errors.json"
           queue.type="LinkedList" $4 action.resumeRetryCount="-1")
}
CONF
}

agent_conf() { # DIR PORT INDEX PROTOCOL
    cat <<YAML
data_dir: $1/agent
output:
  urls: [http://127.0.0.1:$2]
  protocol: $4
inputs:
  - paths: [$1/logs/*.log]
    index_set: $3
    start_at: beginning
YAML
}

count() { # PORT INDEX
    curl -sf "http://127.0.0.1:$1/api/v1/search?indexset=$2&limit=0&track_total_hits=true" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])' 2>/dev/null || echo 0
}

# Waits until INDEX holds TARGET events (0), or its count has not moved for STALL_SECS or the shipper died (1).
wait_count() { # PORT INDEX TARGET SHIPPER_PID
    local last=-1 since=$SECONDS n
    while :; do
        n=$(count "$1" "$2")
        [ "$n" -ge "$3" ] && return 0
        if [ "$n" != "$last" ]; then last=$n; since=$SECONDS; fi
        if [ $((SECONDS - since)) -ge $STALL_SECS ] || ! kill -0 "$4" 2>/dev/null; then
            echo "  $2: stuck at $n of $3 events" >&2; return 1
        fi
        sleep 0.25
    done
}

RESULTS=()
run() { # SHIPPER
    local name=$1 dir="$WORK/run-$1" port=$((20000 + RANDOM % 20000)) index pid node queue
    index=${name//[^a-z0-9]/}
    mkdir -p "$dir/logs" "$dir/rsyslog" "$dir/agent"
    ln "$WORK/data"/bulk-*.log "$dir/logs/"
    : >"$dir/logs/steady.log"
    dotnet "$DLL" serve --data "$dir/node" --urls "http://127.0.0.1:$port" --environment Production >"$dir/node.log" 2>&1 &
    node=$!; PIDS+=("$node")
    until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
        kill -0 "$node" 2>/dev/null || { cat "$dir/node.log" >&2; exit 1; }
        sleep 0.2
    done
    curl -sf -XPOST "http://127.0.0.1:$port/api/v1/indexsets" -H 'Content-Type: application/json' -d "{\"name\":\"$index\"}" >/dev/null

    case $name in
        rsyslog*)
            if [ "$name" = rsyslog ]; then queue="queue.size=\"100000\" queue.dequeueBatchSize=\"$RSYSLOG_BATCH\""
            elif [ "$name" = rsyslog-default ]; then queue=""
            else echo "unknown shipper $name (rsyslog, rsyslog-default, agent-es, agent)" >&2; exit 1; fi
            rsyslog_conf "$dir" "$port" "$index" "$queue" >"$dir/rsyslog.conf"
            "$RSYSLOGD" -N1 -f "$dir/rsyslog.conf" >"$dir/rsyslog.check" 2>&1 || { cat "$dir/rsyslog.check" >&2; exit 1; }
            ;;
        agent-es) agent_conf "$dir" "$port" "$index" elasticsearch >"$dir/agent.yaml" ;;
        agent) agent_conf "$dir" "$port" "$index" logwell >"$dir/agent.yaml" ;;
        *) echo "unknown shipper $name (rsyslog, rsyslog-default, agent-es, agent)" >&2; exit 1 ;;
    esac
    echo "$name: shipping to 127.0.0.1:$port, index set $index" >&2

    local start end node_start node_cpu bulk_cpu before after wrote steady_start steady_end caught_up
    node_start=$(cpu "$node")
    start=$(date +%s.%N)
    if [ "$name" != "${name#rsyslog}" ]; then
        "$RSYSLOGD" -n -f "$dir/rsyslog.conf" -i "$dir/rsyslog/rsyslogd.pid" >"$dir/shipper.log" 2>&1 &
    else
        dotnet "$DLL" agent -c "$dir/agent.yaml" >"$dir/shipper.log" 2>&1 &
    fi
    pid=$!; PIDS+=("$pid")
    local complete=1
    wait_count "$port" "$index" "$BULK_LINES" "$pid" || complete=0
    end=$(date +%s.%N)
    bulk_cpu=$(cpu "$pid")
    node_cpu=$(($(cpu "$node") - node_start))

    before=$(cpu "$pid")
    steady_start=$(date +%s.%N)
    steady_write "$dir/logs/steady.log"
    after=$(cpu "$pid")
    steady_end=$(date +%s.%N)
    wrote=$((BULK_LINES + $(cat "$dir/logs/steady.log.count")))
    wait_count "$port" "$index" "$wrote" "$pid" || true
    caught_up=$(date +%s.%N)
    sleep 2   # a late duplicate would show now
    local events rss errors=0
    events=$(count "$port" "$index")
    rss=$(hwm "$pid")
    echo "  an event: $(curl -sf "http://127.0.0.1:$port/api/v1/search?indexset=$index&limit=1" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["hits"][0]))' 2>/dev/null)" >&2
    if [ -s "$dir/rsyslog/es-errors.json" ]; then errors=$(grep -c '"status"' "$dir/rsyslog/es-errors.json" || true); fi
    if [ -s "$dir/shipper.log" ]; then echo "  $name said:" >&2; tail -5 "$dir/shipper.log" | sed 's/^/    /' >&2; fi
    if [ "$errors" != 0 ]; then
        echo "  rsyslog's error file holds $errors failed items, the first:" >&2
        head -c 1000 "$dir/rsyslog/es-errors.json" | sed 's/^/    /' >&2; echo >&2
    fi
    stop "$pid"; stop "$node"
    RESULTS+=("$name $BULK_BYTES $complete $start $end $node_cpu $bulk_cpu $before $after $steady_start $steady_end $caught_up $rss $events $wrote")
}

for shipper in $SHIPPERS; do run "$shipper"; done

python3 - "$TICK" "${RESULTS[@]}" <<'PY'
import sys
tick = int(sys.argv[1])
head = ["shipper", "MB", "wall s", "MB/s", "CPU s", "MB per CPU-s", "node CPU s", "peak RSS MB", "steady % of a core",
        "steady lag s", "events in Logwell", "lines written", "missing", "duplicated"]
rows = []
for r in sys.argv[2:]:
    name, b, complete, s, e, node_cpu, cpu, before, after, steady_start, steady_end, caught_up, rss, events, wrote = r.split()
    mb, wall, cpu_s = int(b) / 1e6, float(e) - float(s), int(cpu) / tick
    events, wrote = int(events), int(wrote)
    late = "" if complete == "1" else ">"  # the bulk lines never all arrived: the time until the count stopped moving
    rows.append([name, f"{mb:.0f}", f"{late}{wall:.1f}", f"{mb / wall:.1f}", f"{cpu_s:.1f}", f"{mb / cpu_s:.1f}", f"{int(node_cpu) / tick:.1f}", rss,
                 f"{100 * (int(after) - int(before)) / tick / (float(steady_end) - float(steady_start)):.0f}%", f"{float(caught_up) - float(steady_end):.1f}",
                 str(events), str(wrote), str(max(0, wrote - events)), str(max(0, events - wrote))])
widths = [max(len(x) for x in col) for col in zip(head, *rows)]
for row in [head, ["-" * w for w in widths]] + rows:
    print(" | ".join(x.rjust(w) if i else x.ljust(w) for i, (x, w) in enumerate(zip(row, widths))))
PY
