#!/usr/bin/env bash
# What drift monitoring costs the serving path, in one run: two servers of one build with the
# README's settings, breast-cancer under wrk. On one, an alert rule on drift_detected (a window of
# the last minute, against the sample's shipped reference) is evaluated every 5 s: each pass reads
# and decrypts the window's logged predictions (at most 100,000) and runs every test, MMD included.
# Usage: bench/drift-cost.sh [seconds=10] [connections=64]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
secs=${1:-10} conns=${2:-64}
work=$(mktemp -d)
mkdir -p "$here/results"
out="$here/results/drift-cost-$(date -u +%Y-%m-%dT%H%M).txt"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
dotnet publish "$root/src/MedServe/MedServe.csproj" -c Release -o "$work/app" >/dev/null
declare -A port=([plain]=9040 [monitored]=9060)
for side in plain monitored; do
  (cd "$work" && exec env MEDSERVE_PROVISION_SAMPLES=true MEDSERVE_ALERTS__INTERVAL=00:00:05 dotnet app/medserve.dll serve --http-port "${port[$side]}" --grpc-port $((port[$side] + 1)) \
    --data-dir "$work/data-$side" --model-repository "$work/models-$side" >"$work/$side.log" 2>&1) &
  pids+=($!)
  for _ in $(seq 1 240); do curl -sf "http://127.0.0.1:${port[$side]}/v2/health/ready" >/dev/null && break; sleep 1; done
done
declare -A token=([plain]=$(cat "$work/data-plain/admin.key") [monitored]=$(cat "$work/data-monitored/admin.key"))
curl -sf -X PUT -H "Authorization: Bearer ${token[monitored]}" -H 'Content-Type: application/json' "http://127.0.0.1:${port[monitored]}/v1/alerts/rules/drift" \
  -d '{"name":"drift","model":"breast-cancer","metric":"drift_detected","above":0.5,"window":"PT1M","min_samples":20}' >/dev/null
echo "drift monitoring: plain against monitored (drift_detected evaluated every 5 s over the last minute); breast-cancer REST JSON, wrk -t2 -c$conns -d${secs}s" | tee "$out"
for side in plain monitored; do AUTH_TOKEN=${token[$side]} wrk -t2 -c$conns -d3s -s "$here/breast-cancer.lua" "http://127.0.0.1:${port[$side]}" >/dev/null; done
for round in 1 2 3; do
  for side in plain monitored; do
    r=$(AUTH_TOKEN=${token[$side]} wrk -t2 -c$conns -d${secs}s --latency -s "$here/breast-cancer.lua" "http://127.0.0.1:${port[$side]}")
    echo "round $round $side: $(echo "$r" | awk '/Requests\/sec/ {print $2" req/s"}'), $(echo "$r" | awk '/50%/ {print "p50 "$2}'), $(echo "$r" | awk '/99%/ {print "p99 "$2}')" | tee -a "$out"
  done
done
curl -sf -H "Authorization: Bearer ${token[monitored]}" "http://127.0.0.1:${port[monitored]}/v1/alerts" | head -c 400 | tee -a "$out"; echo
