#!/usr/bin/env bash
# What sharing the per-key rate limits through Redis costs (issue 15): two MedServe servers as the
# README's first command starts them, each key limited to 1,000,000 requests/s (so every request
# passes through a bucket, none is refused): "local" counts in process, "redis" runs the token-bucket
# script on a redis-server on loopback (one call per key per 100 ms per replica, taking the tokens
# the replica was asked for in the last window). risk over REST JSON, alternating rounds.
# BASELINE=<commit> adds a third server built from that commit, also on Redis (its own key prefix),
# so a change to the shared bucket shows its before/after in one run.
# Needs: wrk, redis-server. Usage: [CONCURRENCY="16 64"] [ROUNDS=2] [BASELINE=commit] bench/shared-rate-limits.sh [seconds, default 6]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
secs=${1:-6}
rounds=${ROUNDS:-2}
work=$(mktemp -d)
mkdir -p "$here/results"
out="$here/results/shared-rate-limits-$(date -u +%Y-%m-%dT%H%M).txt"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT
log() { echo "$*" | tee -a "$out"; }

redis-server --port 8890 --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null 2>&1 &
pids+=($!)
dotnet publish "$root/src/MedServe/MedServe.csproj" -c Release -o "$work/app" >/dev/null
servers="local redis"
if [ -n "${BASELINE:-}" ]; then
  git -C "$root" worktree add -q --detach "$work/base-src" "$BASELINE"
  dotnet publish "$work/base-src/src/MedServe/MedServe.csproj" -c Release -o "$work/base" >/dev/null
  git -C "$root" worktree remove --force "$work/base-src"
  servers="local redis before"
fi
start() { # name port env...
  local name=$1 port=$2; shift 2
  local app=app; [ "$name" = before ] && app=base
  (cd "$work" && exec env MEDSERVE_LIMITS__REQUESTSPERSECONDPERKEY=1000000 "$@" dotnet $app/medserve.dll serve --http-port "$port" \
    --grpc-port $((port + 1)) --data-dir "$work/$name" --model-repository "$work/models" >"$work/$name.log" 2>&1) &
  pids+=($!)
  for _ in $(seq 1 180); do curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 1; done
}
start local 8800 MEDSERVE_PROVISION_SAMPLES=true
start redis 8820 MEDSERVE_REDIS__CONNECTIONSTRING=127.0.0.1:8890
declare -A port=([local]=8800 [redis]=8820 [before]=8840)
declare -A token=([local]=$(cat "$work/local/admin.key") [redis]=$(cat "$work/redis/admin.key"))
if [ -n "${BASELINE:-}" ]; then
  start before 8840 MEDSERVE_REDIS__CONNECTIONSTRING=127.0.0.1:8890 MEDSERVE_REDIS__KEYPREFIX=before:
  token[before]=$(cat "$work/before/admin.key")
fi

run() { # label server conns
  local r; r=$(AUTH_TOKEN=${token[$2]} wrk -t2 -c$3 -d${secs}s --latency -s "$here/risk.lua" "http://127.0.0.1:${port[$2]}")
  log "$1 $2 c=$3: $(echo "$r" | awk '/Requests\/sec/ {print $2" req/s"}'), $(echo "$r" | awk '/^p50/ {print "p50 "$2" ms"}'), $(echo "$r" | awk '/^p99/ {print "p99 "$2" ms"}'), $(echo "$r" | grep -E 'errors|Non-2xx' | tr '\n' ' ')"
}

log "# MedServe shared rate limits, $(date -u +%FT%TZ), $(nproc) cores, ${secs}s per run, $rounds rounds${BASELINE:+, before = $BASELINE}"
for s in $servers; do AUTH_TOKEN=${token[$s]} wrk -t2 -c64 -d3s -s "$here/risk.lua" "http://127.0.0.1:${port[$s]}" >/dev/null; done
for round in $(seq 1 "$rounds"); do
  for c in ${CONCURRENCY:-16 64}; do
    for s in $servers; do run "rest-json (round $round)" "$s" "$c"; done
  done
done
log "redis server's metrics: $(curl -s -H "Authorization: Bearer ${token[redis]}" http://127.0.0.1:8820/metrics | grep -E '^medserve_(redis_up|rate_limit_local_total)' | tr '\n' ' ')"
log "buckets in redis: $(redis-cli -p 8890 --scan --pattern 'medserve:rate:*' | wc -l)"
echo "results: $out"
