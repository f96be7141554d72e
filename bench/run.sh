#!/usr/bin/env bash
# Side-by-side benchmark, all in one run on this machine (wrk shares the cores with the servers):
#   a. risk over REST JSON, REST binary and gRPC at concurrency 1, 16, 64
#   b. the FastAPI + PyTorch peer (bench/fastapi-peer) with the same wrk script
#   c. a bare Kestrel answering a fixed v2 response (the HTTP stack's limit)
#   d. resnet18 at concurrency 1, 8, 16 with dynamic batching on and off, against ONNX Runtime in-process
#   e. resident memory of the server against a bare process holding the same sessions
# Needs: wrk, h2load (nghttp2-client), and for the peer python3-fastapi python3-uvicorn python3-torch (Debian packages).
# Usage: bench/run.sh [seconds per run, default 10]   Output: bench/results/<date>.txt
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
secs=${1:-10}
work=$(mktemp -d)
mkdir -p "$here/results"
out="$here/results/$(date -u +%Y-%m-%dT%H%M).txt"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT
log() { echo "$*" | tee -a "$out"; }

dotnet publish "$root/src/MedServe/MedServe.csproj" -c Release -o "$work/app" >/dev/null
dotnet build "$here/Tool" -c Release -o "$work/tool" >/dev/null
tool="dotnet $work/tool/MedServe.Bench.dll"

(cd "$work" && exec dotnet app/medserve.dll serve --http-port 8600 --grpc-port 8601 --data-dir "$work/data" >"$work/server.log" 2>&1) &
pids+=($!)
$tool bare 8700 >/dev/null 2>&1 &
pids+=($!)
peer=""
if /usr/bin/python3 -c "import fastapi, uvicorn, torch" 2>/dev/null; then
  peer=$(PORT=8500 WORKERS=1 "$here/fastapi-peer/run.sh")
  pids+=($peer)
fi
for _ in $(seq 1 180); do curl -sf http://127.0.0.1:8600/v2/health/ready >/dev/null && break; sleep 1; done
sleep 2
server=$(pgrep -f "app/medserve.dll serve --http-port 8600" | head -1)
# Every MedServe request carries the admin key the first start wrote (the lua scripts read AUTH_TOKEN).
export AUTH_TOKEN; AUTH_TOKEN=$(cat "$work/data/admin.key")
auth=(-H "Authorization: Bearer $AUTH_TOKEN")

log "# MedServe side-by-side benchmark, $(date -u +%FT%TZ), $(nproc) cores, ${secs}s per run"
rss() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$1/status"; }
# One request to each model, then the resident memory at rest.
for m in risk breast-cancer; do
  curl -s -o /dev/null "${auth[@]}" http://127.0.0.1:8600/v2/models/$m/infer -d "{\"inputs\":[{\"name\":\"$( [ $m = risk ] && echo input || echo features)\",\"shape\":[1,30],\"datatype\":\"FP32\",\"data\":[$(printf '0.5,%.0s' $(seq 1 29))0.5]}]}"
done
wrk -t1 -c1 -d1s -s "$here/resnet18.lua" http://127.0.0.1:8600 >/dev/null
log "== e. memory: MedServe resident $(rss "$server") MiB at rest with the samples loaded"
log "$(DOTNET_gcServer=0 $tool hold "$work/data/models")"

wrkrun() { # name url script conns
  local t=$(( $4 < 2 ? 1 : 2 ))
  local r; r=$(wrk -t$t -c$4 -d${secs}s --latency -s "$3" "$2")
  log "$1 c=$4: $(echo "$r" | awk '/Requests\/sec/ {print $2" req/s"}'), $(echo "$r" | awk '/^p50/ {print "p50 "$2" ms"}'), $(echo "$r" | awk '/^p99/ {print "p99 "$2" ms"}'), $(echo "$r" | grep errors)"
}

# Warm-up: JIT tiers and ONNX Runtime's first runs, outside the measured runs.
wrk -t2 -c16 -d3s -s "$here/risk.lua" http://127.0.0.1:8600 >/dev/null
wrk -t2 -c16 -d3s -s "$here/risk-binary.lua" http://127.0.0.1:8600 >/dev/null
wrk -t2 -c16 -d3s -s "$here/risk.lua" http://127.0.0.1:8700 >/dev/null
wrk -t2 -c8 -d4s -s "$here/resnet18.lua" http://127.0.0.1:8600 >/dev/null
$tool grpc-body risk "$work/risk.grpc"
grpcrun() { # conns
  local r; r=$(h2load -c$1 -m1 -D $secs -d "$work/risk.grpc" -H 'content-type: application/grpc' -H 'te: trailers' "${auth[@]}" \
    --log-file="$work/h2-$1.log" http://127.0.0.1:8601/inference.GRPCInferenceService/ModelInfer)
  log "medserve grpc c=$1: $(echo "$r" | awk '/^finished in/ {print $4" req/s"}'), $($tool percentiles "$work/h2-$1.log"), $(echo "$r" | grep '^requests:')"
}
h2load -c16 -m1 -D 3 -d "$work/risk.grpc" -H 'content-type: application/grpc' -H 'te: trailers' "${auth[@]}" http://127.0.0.1:8601/inference.GRPCInferenceService/ModelInfer >/dev/null

log "== a-c. risk"
for c in 1 16 64; do
  wrkrun "medserve rest-json" http://127.0.0.1:8600 "$here/risk.lua" $c
  wrkrun "medserve rest-binary" http://127.0.0.1:8600 "$here/risk-binary.lua" $c
  grpcrun $c
  wrkrun "bare-kestrel" http://127.0.0.1:8700 "$here/risk.lua" $c
  [ -n "$peer" ] && wrkrun "fastapi-peer" http://127.0.0.1:8500 "$here/risk.lua" $c
done
log "medserve resident after the risk runs: $(rss "$server") MiB"

log "== metrics cost: risk rest-json c=64 with the histograms on (above) and off (a second server, same data)"
# A data dir of its own (one server per data dir), the same models.
(cd "$work" && MEDSERVE_METRICS__HISTOGRAMS=false exec dotnet app/medserve.dll serve --http-port 8610 --grpc-port 8611 --data-dir "$work/data2" --model-repository "$work/data/models" >"$work/server2.log" 2>&1) &
pids+=($!)
for _ in $(seq 1 120); do curl -sf http://127.0.0.1:8610/v2/health/ready >/dev/null && break; sleep 1; done
token2=$(cat "$work/data2/admin.key")
AUTH_TOKEN=$token2 wrk -t2 -c64 -d8s -s "$here/risk.lua" http://127.0.0.1:8610 >/dev/null
for round in 1 2; do
  AUTH_TOKEN=$token2 wrkrun "medserve rest-json histograms-off (round $round)" http://127.0.0.1:8610 "$here/risk.lua" 64
  wrkrun "medserve rest-json histograms-on (round $round)" http://127.0.0.1:8600 "$here/risk.lua" 64
done
kill ${pids[-1]} 2>/dev/null

log "== d. resnet18, dynamic batching on (the sample's config)"
for c in 1 8 16; do wrkrun "medserve resnet18 batching" http://127.0.0.1:8600 "$here/resnet18.lua" $c; done
config='{"name":"resnet18","platform":"onnxruntime_onnx","max_batch_size":32,"input":[{"name":"image","data_type":"TYPE_FP32","dims":[3,224,224]}],"output":[{"name":"embedding","data_type":"TYPE_FP32","dims":[512]}]}'
curl -sf -X POST "${auth[@]}" http://127.0.0.1:8600/v2/repository/models/resnet18/load -d "{\"parameters\":{\"config\":$(printf '%s' "$config" | /usr/bin/python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}}" >/dev/null
log "== d. resnet18, dynamic batching off (one instance, requests wait their turn)"
for c in 1 8 16; do wrkrun "medserve resnet18 no-batching" http://127.0.0.1:8600 "$here/resnet18.lua" $c; done
log "medserve resident after the resnet18 runs: $(rss "$server") MiB"
cleanup
pids=()
log "== d. limits: ONNX Runtime in-process, one session, one run at a time"
$tool inproc "$work/data/models" "$secs" | tee -a "$out"
echo "results: $out"
