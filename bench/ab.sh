#!/usr/bin/env bash
# A hot-path change, before and after, in one run: two commits published side by side, each
# served with the same settings, risk over REST JSON under wrk, in alternating rounds.
# Usage: bench/ab.sh BEFORE_REV AFTER_REV [seconds=8] [connections=64] [settings: default|open]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
before=$1 after=$2 secs=${3:-8} conns=${4:-64} mode=${5:-default}
work=$(mktemp -d)
mkdir -p "$here/results"
out="$here/results/ab-$(git -C "$root" rev-parse --short "$before")-$(git -C "$root" rev-parse --short "$after")-$mode.txt"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; git -C "$root" worktree remove --force "$work/src-a" 2>/dev/null || true; git -C "$root" worktree remove --force "$work/src-b" 2>/dev/null || true; }
trap cleanup EXIT
git -C "$root" worktree add -q --detach "$work/src-a" "$before"
git -C "$root" worktree add -q --detach "$work/src-b" "$after"
dotnet publish "$work/src-a/src/MedServe/MedServe.csproj" -c Release -o "$work/a" >/dev/null
dotnet publish "$work/src-b/src/MedServe/MedServe.csproj" -c Release -o "$work/b" >/dev/null
env=(MEDSERVE_PROVISION_SAMPLES=true)
[ "$mode" = open ] && env+=(MEDSERVE_AUDIT__ENABLED=false MEDSERVE_AUTH__ENABLED=false)
declare -A port=([a]=8900 [b]=8920)
for side in a b; do
  (cd "$work" && exec env "${env[@]}" dotnet "$side/medserve.dll" serve --http-port "${port[$side]}" --grpc-port $((port[$side] + 1)) \
    --data-dir "$work/data-$side" --model-repository "$work/models-$side" >"$work/$side.log" 2>&1) &
  pids+=($!)
  for _ in $(seq 1 180); do curl -sf "http://127.0.0.1:${port[$side]}/v2/health/ready" >/dev/null && break; sleep 1; done
done
declare -A token=([a]="" [b]="")
[ "$mode" = default ] && token=([a]=$(cat "$work/data-a/admin.key") [b]=$(cat "$work/data-b/admin.key"))
echo "before $before, after $after; $mode settings; risk REST JSON, wrk -t2 -c$conns -d${secs}s, alternating" | tee "$out"
for side in a b; do AUTH_TOKEN=${token[$side]} wrk -t2 -c$conns -d3s -s "$here/risk.lua" "http://127.0.0.1:${port[$side]}" >/dev/null; done
for round in 1 2 3; do
  for side in a b; do
    r=$(AUTH_TOKEN=${token[$side]} wrk -t2 -c$conns -d${secs}s --latency -s "$here/risk.lua" "http://127.0.0.1:${port[$side]}")
    echo "round $round $([ $side = a ] && echo before || echo after): $(echo "$r" | awk '/Requests\/sec/ {print $2" req/s"}'), $(echo "$r" | awk '/^p50/ {print "p50 "$2" ms"}'), $(echo "$r" | awk '/^p99/ {print "p99 "$2" ms"}')" | tee -a "$out"
  done
done
