#!/usr/bin/env bash
# The soak (issue 15): MedServe with the README's settings, its capacity measured first (wrk,
# risk REST JSON, c=64, 10 s), then 10 minutes of open-loop load at 70% of it, with p50, p99,
# errors and resident memory sampled every 10 s.
# Usage: bench/soak.sh [minutes=10] [share=0.7]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
minutes=${1:-10} share=${2:-0.7}
work=$(mktemp -d)
mkdir -p "$here/results"
out="$here/results/soak-$(date -u +%Y-%m-%dT%H%M).csv"
dotnet publish "$root/src/MedServe/MedServe.csproj" -c Release -o "$work/app" >/dev/null
dotnet build "$here/Tool" -c Release -o "$work/tool" >/dev/null
(cd "$work" && exec env MEDSERVE_PROVISION_SAMPLES=true dotnet app/medserve.dll serve --http-port 8980 --grpc-port 8981 --data-dir "$work/data" \
  --model-repository "$work/models" >"$work/server.log" 2>&1) &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 180); do curl -sf http://127.0.0.1:8980/v2/health/ready >/dev/null && break; sleep 1; done
key=$(cat "$work/data/admin.key")
capacity=$(AUTH_TOKEN=$key wrk -t2 -c64 -d10s -s "$here/risk.lua" http://127.0.0.1:8980 | awk '/Requests\/sec/ {print $2}')
rate=$(python3 -c "print(round($capacity * $share))")
echo "# capacity ${capacity} req/s; soak at ${rate} req/s (${share}) for ${minutes} min" | tee "$out"
server_pid=$(pgrep -f "app/medserve.dll serve --http-port 8980")
dotnet "$work/tool/MedServe.Bench.dll" soak http://127.0.0.1:8980 "$key" "$server_pid" "$rate" $((minutes * 60)) | tee -a "$out"
