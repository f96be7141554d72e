#!/usr/bin/env bash
# Secure serving against the HTTP stack's limit, all servers side by side in one run (issue 10):
#   bare     a bare Kestrel answering a fixed v2 response (bench/Tool BareKestrel): the limit
#   open     MedServe with authentication and the journal off (loopback only)
#   default  MedServe as the README's first command starts it: API key checked, every inference
#            journaled with its encrypted inputs and outputs, durable (fdatasync) before the answer
#   peer     the FastAPI + uvicorn + PyTorch peer (bench/fastapi-peer), when its packages are installed
# risk over REST JSON (all four), REST binary (bare, open, default) and gRPC (open, default), at
# each concurrency, in alternating rounds after a warm-up. wrk -t2 and h2load share the 2 cores.
# Needs: wrk, h2load (nghttp2-client); for the peer python3-fastapi python3-uvicorn python3-torch.
# Usage: [CONCURRENCY="1 16 32 64 256"] [ROUNDS=2] bench/secure-serving.sh [seconds per run, default 6]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
secs=${1:-6}
rounds=${ROUNDS:-2}
work=$(mktemp -d)
mkdir -p "$here/results"
out="$here/results/secure-serving-$(date -u +%Y-%m-%dT%H%M).txt"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT
log() { echo "$*" | tee -a "$out"; }

dotnet publish "$root/src/MedServe/MedServe.csproj" -c Release -o "$work/app" >/dev/null
dotnet build "$here/Tool" -c Release -o "$work/tool" >/dev/null
tool="dotnet $work/tool/MedServe.Bench.dll"
start() { # name port env...
  local name=$1 port=$2; shift 2
  (cd "$work" && exec env "$@" dotnet app/medserve.dll serve --http-port "$port" --grpc-port $((port + 1)) --data-dir "$work/$name" \
    --model-repository "$work/models" >"$work/$name.log" 2>&1) &
  pids+=($!)
  for _ in $(seq 1 180); do curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 1; done
}
# The default server provisions the sample models; the open one serves the same folder.
start default 8800 MEDSERVE_PROVISION_SAMPLES=true
start open 8820 MEDSERVE_AUDIT__ENABLED=false MEDSERVE_AUTH__ENABLED=false
$tool bare 8700 >/dev/null 2>&1 &
pids+=($!)
servers="bare open default"
declare -A port=([bare]=8700 [open]=8820 [default]=8800 [peer]=8500)
declare -A token=([bare]="" [open]="" [default]=$(cat "$work/default/admin.key") [peer]="")
if /usr/bin/python3 -c "import fastapi, uvicorn, torch" 2>/dev/null; then
  pids+=($(PORT=8500 WORKERS=1 "$here/fastapi-peer/run.sh"))
  for _ in $(seq 1 120); do curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' http://127.0.0.1:8500/v2/models/risk/infer \
    -d '{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]}' && break; sleep 1; done
  servers="$servers peer"
fi
sleep 2
$tool grpc-body risk "$work/risk.grpc"

wrkrun() { # label server script conns
  local r; r=$(AUTH_TOKEN=${token[$2]} wrk -t$(( $4 < 2 ? 1 : 2 )) -c$4 -d${secs}s --latency -s "$here/$3" "http://127.0.0.1:${port[$2]}")
  log "$1 $2 c=$4: $(echo "$r" | awk '/Requests\/sec/ {print $2" req/s"}'), $(echo "$r" | awk '/^p50/ {print "p50 "$2" ms"}'), $(echo "$r" | awk '/^p99/ {print "p99 "$2" ms"}'), $(echo "$r" | grep -E 'errors|Non-2xx' | tr '\n' ' ')"
}
grpcrun() { # label server conns
  local auth=(); [ -n "${token[$2]}" ] && auth=(-H "authorization: Bearer ${token[$2]}")
  local r; r=$(h2load -c$3 -m1 -D "$secs" -d "$work/risk.grpc" -H 'content-type: application/grpc' -H 'te: trailers' "${auth[@]}" \
    "http://127.0.0.1:$((${port[$2]} + 1))/inference.GRPCInferenceService/ModelInfer")
  log "$1 $2 c=$3: $(echo "$r" | awk '/^finished in/ {print $4" req/s"}'), $(echo "$r" | awk '/^time for request:/ {print "mean "$6}'), $(echo "$r" | grep '^status codes:')"
}

log "# MedServe secure serving, $(date -u +%FT%TZ), $(nproc) cores, ${secs}s per run, $rounds rounds"
for s in $servers; do AUTH_TOKEN=${token[$s]} wrk -t2 -c64 -d3s -s "$here/risk.lua" "http://127.0.0.1:${port[$s]}" >/dev/null; done
for round in $(seq 1 "$rounds"); do
  for c in ${CONCURRENCY:-1 16 32 64 256}; do
    for s in $servers; do wrkrun "rest-json (round $round)" "$s" risk.lua "$c"; done
  done
done
for c in ${CONCURRENCY:-1 16 32 64 256}; do
  for s in bare open default; do wrkrun "rest-binary" "$s" risk-binary.lua "$c"; done
  for s in open default; do grpcrun "grpc" "$s" "$c"; done
done
log "default server's journal: $(du -sh "$work/default/journal" | cut -f1) in $(ls "$work/default/journal" | wc -l) segments"
log "$(dotnet "$work/app/medserve.dll" audit verify --data-dir "$work/default" --public-key "$work/default/secrets/audit-signing.pub.pem")"
echo "results: $out"
