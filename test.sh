#!/usr/bin/env bash
# Runs every Logwell test: builds in Release, then unit, engine and integration tests (which start real
# `logwell serve` processes on free loopback ports). Installs what the tests need when it is missing; today that is
# only the .NET SDK pinned in global.json, which must already be on PATH.
set -euo pipefail
cd "$(dirname "$0")"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

if ! command -v dotnet >/dev/null 2>&1; then
  echo "test.sh: the .NET 10 SDK (dotnet) is not on PATH; install it (see global.json) and run again" >&2
  exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

dotnet build Logwell.slnx -c Release -nologo -v quiet
set +e
dotnet test Logwell.slnx -c Release --no-build -nologo 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# One closing line for the whole run, summed over the test assemblies.
awk '/^(Passed|Failed)!/ {
       for (i = 1; i <= NF; i++) {
         if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1)
       }
     }
     END { gsub(",", "", p); printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
