#!/usr/bin/env bash
# What experiment routing costs the serving path, in one run: two servers of one build with the
# README's settings; on one, an experiment splits risk by patient between two arms (both version 1,
# so only the routing differs). risk over REST JSON naming patients (bench/risk-patients.lua),
# wrk -t2, alternating rounds after a warm-up.
# Usage: bench/experiment-routing.sh [seconds=8] [connections=64]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
secs=${1:-8} conns=${2:-64}
work=$(mktemp -d)
mkdir -p "$here/results"
out="$here/results/experiment-routing-$(date -u +%Y-%m-%dT%H%M).txt"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
dotnet publish "$root/src/MedServe/MedServe.csproj" -c Release -o "$work/app" >/dev/null
declare -A port=([plain]=8940 [routed]=8960)
for side in plain routed; do
  (cd "$work" && exec env MEDSERVE_PROVISION_SAMPLES=true dotnet app/medserve.dll serve --http-port "${port[$side]}" --grpc-port $((port[$side] + 1)) \
    --data-dir "$work/data-$side" --model-repository "$work/models-$side" >"$work/$side.log" 2>&1) &
  pids+=($!)
  for _ in $(seq 1 180); do curl -sf "http://127.0.0.1:${port[$side]}/v2/health/ready" >/dev/null && break; sleep 1; done
done
declare -A token=([plain]=$(cat "$work/data-plain/admin.key") [routed]=$(cat "$work/data-routed/admin.key"))
curl -sf -X POST -H "Authorization: Bearer ${token[routed]}" -H 'Content-Type: application/json' "http://127.0.0.1:${port[routed]}/v1/experiments" \
  -d '{"name":"bench","model":"risk","unit":"patient","arms":[{"name":"control","version":"1","weight":50},{"name":"candidate","version":"1","weight":50}]}' >/dev/null
echo "experiment routing: plain (no experiment) against routed (50/50 by patient); risk REST JSON with patient ids, wrk -t2 -c$conns -d${secs}s" | tee "$out"
for side in plain routed; do AUTH_TOKEN=${token[$side]} wrk -t2 -c$conns -d3s -s "$here/risk-patients.lua" "http://127.0.0.1:${port[$side]}" >/dev/null; done
for round in 1 2 3; do
  for side in plain routed; do
    r=$(AUTH_TOKEN=${token[$side]} wrk -t2 -c$conns -d${secs}s --latency -s "$here/risk-patients.lua" "http://127.0.0.1:${port[$side]}")
    echo "round $round $side: $(echo "$r" | awk '/Requests\/sec/ {print $2" req/s"}'), $(echo "$r" | awk '/^p50/ {print "p50 "$2" ms"}'), $(echo "$r" | awk '/^p99/ {print "p99 "$2" ms"}'), $(echo "$r" | grep -E 'errors|Non-2xx' | tr '\n' ' ')" | tee -a "$out"
  done
done
curl -sf -H "Authorization: Bearer ${token[routed]}" "http://127.0.0.1:${port[routed]}/v1/experiments/bench" | head -c 600 | tee -a "$out"; echo
