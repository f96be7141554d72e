#!/usr/bin/env bash
# The cost of outcome ingestion (issue 12): MedServe as the README starts it (API key, journal on),
# N risk inferences naming patients, then their outcomes in batches, joined by request id and by
# patient and time (each outcome journaled durably before the answer).
# Usage: bench/outcomes.sh [predictions, default 20000] [batch, default 1000]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
count=${1:-20000}
batch=${2:-1000}
work=$(mktemp -d)
mkdir -p "$here/results"
out="$here/results/outcomes-$(date -u +%Y-%m-%dT%H%M).txt"
dotnet publish "$root/src/MedServe/MedServe.csproj" -c Release -o "$work/app" >/dev/null
dotnet build "$here/Tool" -c Release -o "$work/tool" >/dev/null
(cd "$work" && exec env MEDSERVE_PROVISION_SAMPLES=true dotnet app/medserve.dll serve --http-port 8840 --grpc-port 8841 --data-dir "$work/data" \
  --model-repository "$work/models" >"$work/server.log" 2>&1) &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 180); do curl -sf http://127.0.0.1:8840/v2/health/ready >/dev/null && break; sleep 1; done
dotnet "$work/tool/MedServe.Bench.dll" outcomes http://127.0.0.1:8840 "$(cat "$work/data/admin.key")" "$count" "$batch" | tee "$out"
