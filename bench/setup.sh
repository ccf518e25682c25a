#!/usr/bin/env bash
# Installs the peers the benchmark harness compares Logwell with, from Debian's packages:
# ClickHouse (clickhouse-server), ripgrep and zstd. SQLite FTS5 and Lucene.NET come from NuGet with the build.
set -euo pipefail
missing=()
command -v rg >/dev/null 2>&1 || missing+=(ripgrep)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
[ -x /usr/sbin/clickhouse-server ] || [ -x /usr/bin/clickhouse-server ] || missing+=(clickhouse-server)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench/setup.sh: missing ${missing[*]}; run as root (or install them) to benchmark against them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# Debian's package starts its own server on the default ports; the harness runs its own on free loopback ports.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet clickhouse-server 2>/dev/null; then
  systemctl stop clickhouse-server || true
fi
echo "bench/setup.sh: ripgrep, zstd and clickhouse-server are installed"
