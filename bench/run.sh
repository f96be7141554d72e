#!/usr/bin/env bash
# Starts a published MedServe on 127.0.0.1:8600 with the sample models, runs wrk against risk
# (JSON) and resnet18 (binary) at a few concurrencies, then the in-process ONNX Runtime harness,
# so the serving overhead reads as a ratio. Needs wrk (apt-get install -y wrk).
# Usage: bench/run.sh [seconds per run, default 10]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
secs=${1:-10}
out=$(mktemp -d)
dotnet publish "$root/src/MedServe/MedServe.csproj" -c Release -o "$out/app" >/dev/null
(cd "$out" && dotnet app/medserve.dll serve --http-port 8600 --data-dir "$out/data" >"$out/server.log" 2>&1) &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -sf http://127.0.0.1:8600/v2/health/ready >/dev/null && break
  sleep 1
done

for c in 1 8 32; do
  echo "== risk, JSON, $c connections"
  wrk -t$(( c < 2 ? 1 : 2 )) -c$c -d${secs}s --latency -s "$here/risk.lua" http://127.0.0.1:8600 | grep -E "Requests/sec|^p[0-9]+:|errors"
done
for c in 1 4; do
  echo "== resnet18, binary, $c connections"
  wrk -t1 -c$c -d${secs}s --latency -s "$here/resnet18.lua" http://127.0.0.1:8600 | grep -E "Requests/sec|^p[0-9]+:|errors"
done
kill $server 2>/dev/null || true; wait $server 2>/dev/null || true

echo "== in-process ONNX Runtime, same model files and session settings"
dotnet run --project "$here/Harness" -c Release -- "$out/data/models" "$secs"
