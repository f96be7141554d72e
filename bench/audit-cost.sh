#!/usr/bin/env bash
# What security costs on the throughput benchmark, all in one run: risk over REST JSON and gRPC at
# concurrency 16 and 64 against three servers over the same models, alternating rounds:
#   secure   the default: API key checked, every inference audited (durable before the answer)
#   no-audit the key checked, auditing off (MEDSERVE_AUDIT__ENABLED=false, loopback only)
#   open     authentication and auditing off (what MedServe was before issue 5)
# Needs: wrk, h2load (nghttp2-client). Usage: [CONCURRENCY="16 64"] bench/audit-cost.sh [seconds per run, default 8]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
secs=${1:-8}
work=$(mktemp -d)
mkdir -p "$here/results"
out="$here/results/audit-cost-$(date -u +%Y-%m-%dT%H%M).txt"
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
# The first server provisions the sample models; the others serve the same folder.
start secure 8800 MEDSERVE_PROVISION_SAMPLES=true
start no-audit 8810 MEDSERVE_AUDIT__ENABLED=false
start open 8820 MEDSERVE_AUDIT__ENABLED=false MEDSERVE_AUTH__ENABLED=false
declare -A token=([8800]=$(cat "$work/secure/admin.key") [8810]=$(cat "$work/no-audit/admin.key") [8820]="")
$tool grpc-body risk "$work/risk.grpc"

wrkrun() { # name port conns
  local r; r=$(AUTH_TOKEN=${token[$2]} wrk -t2 -c$3 -d${secs}s --latency -s "$here/risk.lua" "http://127.0.0.1:$2")
  log "$1 rest-json c=$3: $(echo "$r" | awk '/Requests\/sec/ {print $2" req/s"}'), $(echo "$r" | awk '/^p50/ {print "p50 "$2" ms"}'), $(echo "$r" | awk '/^p99/ {print "p99 "$2" ms"}'), $(echo "$r" | grep -E 'errors|Non-2xx' | tr '\n' ' ')"
}
grpcrun() { # name port conns
  local auth=(); [ -n "${token[$2]}" ] && auth=(-H "authorization: Bearer ${token[$2]}")
  local r; r=$(h2load -c$3 -m1 -D "$secs" -d "$work/risk.grpc" -H 'content-type: application/grpc' -H 'te: trailers' "${auth[@]}" \
    "http://127.0.0.1:$(($2 + 1))/inference.GRPCInferenceService/ModelInfer")
  log "$1 grpc c=$3: $(echo "$r" | awk '/^finished in/ {print $4" req/s"}'), $(echo "$r" | grep '^status codes:')"
}

log "# MedServe security cost, $(date -u +%FT%TZ), $(nproc) cores, ${secs}s per run"
for port in 8800 8810 8820; do AUTH_TOKEN=${token[$port]} wrk -t2 -c64 -d4s -s "$here/risk.lua" "http://127.0.0.1:$port" >/dev/null; done
for round in 1 2; do
  for c in ${CONCURRENCY:-16 64}; do
    wrkrun "open     (round $round)" 8820 $c
    wrkrun "no-audit (round $round)" 8810 $c
    wrkrun "secure   (round $round)" 8800 $c
  done
done
for c in ${CONCURRENCY:-16 64}; do
  grpcrun "open    " 8820 $c
  grpcrun "secure  " 8800 $c
done
records=$(/usr/bin/python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from audit_records').fetchone()[0])" "$work/secure/audit.db")
log "secure server's audit trail: $records records"
log "$(dotnet "$work/app/medserve.dll" audit verify --data-dir "$work/secure")"
echo "results: $out"
