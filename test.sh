#!/usr/bin/env bash
# Runs every Logwell test: builds in Release, then unit, engine and integration tests (which start real
# `logwell serve` processes on free loopback ports and drive them with real shipper clients). Installs what the tests
# need when it is missing, from Debian: Node.js and npm (the npm shipper libraries install themselves on first use),
# rsyslog with its omelasticsearch module and TLS driver (rsyslog-gnutls), redis-server (the tests start their own on a free port), chromium (the
# web UI tests drive it headless through Playwright; no browser is downloaded), faketime, curl (the README's HTTP
# example runs as written), supervisor (logwell supervise is compared with Debian's supervisord; the package's own
# service is not started), python3-elasticsearch (Python's Elasticsearch client ships with credentials) and
# clickhouse-server (18.16: the ClickHouse tests start their own servers on free ports; the package's is not started)
# zookeeper (its replicas coordinate through one the tests start; the package's is not started), haproxy (the
# cluster test balances its nodes through one of its own; the package's is not started), postgresql and
# mariadb-server (the metadata tests start their own servers in temporary directories; the packages' are not started),
# and OpenStack Swift (swift-proxy, -account, -container, -object: the S3 backup test starts its own S3-compatible
# server from them; the packages' are not started), and logrotate (the agent's test rotates its files with it).
# Then it runs the tests that see event times again with the clock 400 days ahead (faketime -f '+400d'): every unit
# test and the integration classes marked Category=DateSensitive. A fixed event date fails that pass on the day it is
# written, not on the day retention or a time window makes it expire.
# The .NET SDK pinned in global.json must already be on PATH. Without root, missing tools are named and the tests
# that need them are skipped.
set -euo pipefail
cd "$(dirname "$0")"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# Run under `faketime -f '@2027-03-01 23:59:00' ./test.sh`, every process would start its clock at that instant again;
# the test host and the nodes it starts must share one clock running on from there.
if [[ "${FAKETIME:-}" == @* ]]; then
  export FAKETIME_DONT_RESET=1
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "test.sh: the .NET 10 SDK (dotnet) is not on PATH; install it (see global.json) and run again" >&2
  exit 1
fi

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -x /usr/sbin/rsyslogd ] || missing+=(rsyslog)
find /usr/lib -name omelasticsearch.so 2>/dev/null | grep -q . || missing+=(rsyslog-elasticsearch)
find /usr/lib -name lmnsd_gtls.so 2>/dev/null | grep -q . || missing+=(rsyslog-gnutls)
[ -x /usr/bin/redis-server ] || missing+=(redis-server)
[ -x /usr/sbin/clickhouse-server ] || missing+=(clickhouse-server)
[ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
[ -x /usr/sbin/logrotate ] || missing+=(logrotate)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
[ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
[ -x /usr/bin/swift-proxy-server ] && [ -x /usr/bin/swift-object-server ] || missing+=(swift swift-proxy swift-account swift-container swift-object)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v supervisord >/dev/null 2>&1 || missing+=(supervisor)
[ -f /usr/lib/python3/dist-packages/elasticsearch/__init__.py ] || missing+=(python3-elasticsearch)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${missing[*]} from Debian"
    # No package's service is started (supervisor's, redis-server's): the tests start their own.
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy=/usr/sbin/policy-rc.d
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || echo "test.sh: could not install ${missing[*]}; the tests that need them are skipped" >&2
    [ -z "$policy" ] || rm -f "$policy"
  else
    echo "test.sh: ${missing[*]} missing and not installable here (needs root and apt-get); the tests that need them are skipped" >&2
  fi
fi

# Every process the tests start inherits this mark; whatever carries it when a pass ends (a server a test left running,
# a build server) is stopped, so that nothing outlives the run holding its output open.
export TEST_SH_RUN="test.sh-$$-$RANDOM$RANDOM"
stop_leftovers() {
  local pids=() p
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = "$$" ] && continue
    grep -qzx "TEST_SH_RUN=$TEST_SH_RUN" "/proc/$p/environ" 2>/dev/null && pids+=("$p")
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  echo "test.sh: stopping what the tests left running: $(ps -o comm= -p "$(IFS=,; echo "${pids[*]}")" 2>/dev/null | sort | uniq -c | xargs)"
  kill -TERM "${pids[@]}" 2>/dev/null
  sleep 2
  kill -KILL "${pids[@]}" 2>/dev/null
  return 0
}

log="$(mktemp)"
shifted="$(mktemp)"
trap 'stop_leftovers; rm -f "$log" "$shifted"' EXIT

# Runs one pass of `dotnet test` (its arguments) within a time limit, its output shown as it comes and kept in the file
# named first. The output goes to a file, not a pipe: a process a test left behind cannot hold the pass open.
run_pass() {
  local file=$1 limit=$2 pid status
  shift 2
  timeout -k 30 "$limit" "$@" > "$file" 2>&1 &
  pid=$!
  tail -n +1 -f --pid="$pid" "$file"
  wait "$pid"
  status=$?
  [ "$status" -ne 124 ] || echo "test.sh: the pass did not end within $limit and was stopped" | tee -a "$file"
  stop_leftovers
  return "$status"
}

# One closing line for a run, summed over the test assemblies.
summary() {
  awk -v label="$2" '/^(Passed|Failed)!/ {
         for (i = 1; i <= NF; i++) {
           if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1)
         }
       }
       END { gsub(",", "", p); printf "%s: %d passed, %d failed, %d skipped\n", label, p, f, s }' "$1"
}

dotnet build Logwell.slnx -c Release -nologo -v quiet --disable-build-servers
set +e
run_pass "$log" 40m dotnet test Logwell.slnx -c Release --no-build --disable-build-servers -nologo --blame-hang-timeout 10min
status=$?
shifted_status=0
if command -v faketime >/dev/null 2>&1; then
  # 400 days after now, or after the start-at time this run itself was given.
  ahead='+400d'
  if [[ "${FAKETIME:-}" == @* ]]; then
    ahead="@$(date -u -d '+400 days' '+%Y-%m-%d %H:%M:%S')"
  fi
  # An offset loads libfaketime itself rather than through the faketime wrapper: the wrapper ends only once every
  # process that inherited its pipe has, and a server a test left running would keep it (and this pass) waiting.
  clock=(faketime -f "$ahead")
  library=$(compgen -G '/usr/lib/*/faketime/libfaketime.so.1' | head -n 1)
  if [[ "$ahead" == +* && -n "$library" ]]; then
    clock=(env LD_PRELOAD="$library" FAKETIME="$ahead")
  fi
  echo "test.sh: again with the clock 400 days ahead ($ahead): every unit test and Category=DateSensitive"
  run_pass "$shifted" 25m "${clock[@]}" dotnet test Logwell.slnx -c Release --no-build --disable-build-servers -nologo --blame-hang-timeout 10min \
    --filter 'FullyQualifiedName~Logwell.Tests.|Category=DateSensitive'
  shifted_status=$?
else
  echo "test.sh: faketime is missing (Debian package faketime): the pass with the clock 400 days ahead is skipped" >&2
fi
set -e

summary "$log" "tests"
command -v faketime >/dev/null 2>&1 && summary "$shifted" "tests with the clock 400 days ahead"
[ "$status" -eq 0 ] && [ "$shifted_status" -eq 0 ]
