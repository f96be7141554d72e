#!/usr/bin/env bash
# Resident memory of a release MedServe under request-body attacks, sampled before, during and after:
#   1. 30 connections each declaring a 60 MiB body, sending 10 bytes and stalling (trickling 1 KiB/s) for 12 s
#   2. the same with 8 MiB sent before the stall (bodies that really are large)
#   3. 30 concurrent gzip bombs (60 MiB of zeros, some 60 KB compressed)
#   4. 100 connections as in 2 (800 MiB sent): past MedServe:Limits:MaxInFlightRequestBytes (1 GiB by default)
# Usage: [SCENARIOS="1 2 3 4"] bench/memory-burst.sh [source tree to publish the server from, default this one]
#   e.g. git worktree add /tmp/mem-before 206d721 && bench/memory-burst.sh /tmp/mem-before
# Output: bench/results/memory-burst-<date>.txt
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
src=$(cd "${1:-$root}" && pwd)
work=$(mktemp -d)
mkdir -p "$here/results"
out="$here/results/memory-burst-$(date -u +%Y-%m-%dT%H%M).txt"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
log() { echo "$*" | tee -a "$out"; }

dotnet publish "$src/src/MedServe/MedServe.csproj" -c Release -o "$work/app" >/dev/null || exit 1
dotnet build "$here/Tool" -c Release -o "$work/tool" >/dev/null || exit 1
tool="dotnet $work/tool/MedServe.Bench.dll"
port=8650
url=http://127.0.0.1:$port

rss() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$pid/status"; }
# Writable private memory mapped (VmData): what the process has committed, touched or not. A rented
# array that no byte was written to is not resident, but it is committed.
data() { awk '/VmData/ {print int($2/1024)}' "/proc/$pid/status"; }
start() {
  (cd "$work" && exec dotnet app/medserve.dll serve --http-port $port --grpc-port $((port + 1)) --data-dir "$work/data" >"$work/server.log" 2>&1) &
  pid=$!
  for _ in $(seq 1 180); do curl -sf $url/v2/health/ready >/dev/null && break; sleep 1; done
  key=$(cat "$work/data/admin.key")
  body="{\"inputs\":[{\"name\":\"input\",\"shape\":[1,30],\"datatype\":\"FP32\",\"data\":[$(printf '0.5,%.0s' $(seq 1 29))0.5]}]}"
  for _ in $(seq 1 20); do curl -s -o /dev/null -H "Authorization: Bearer $key" $url/v2/models/risk/infer -d "$body"; done
  sleep 3
}
stop() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=""; rm -rf "$work/data"; }
# during <seconds>: samples every second while the attack runs, prints the peaks of resident and committed
during() {
  local peak=0 dpeak=0 r d
  for _ in $(seq 1 "$1"); do sleep 1; r=$(rss); d=$(data); [ "$r" -gt "$peak" ] && peak=$r; [ "$d" -gt "$dpeak" ] && dpeak=$d; done
  echo "$peak $dpeak"
}
after() { # the resident memory 2, 10 and 30 s after the attack ended
  local line=""
  for wait in 2 8 20; do sleep $wait; line="$line $(rss)"; done
  echo "$line"
}

log "# memory burst, server from $src ($(git -C "$src" rev-parse --short HEAD)), $(date -u +%FT%TZ), $(nproc) cores"
scenario() { # name, then the tool's arguments
  local name=$1; shift
  start
  local base; base=$(rss)
  local dbase; dbase=$(data)
  local args=("${@/#KEY/$key}")
  $tool "${args[@]}" >"$work/tool.log" 2>&1 &
  local attack=$!
  local peak dpeak; read -r peak dpeak < <(during 10)
  wait $attack
  local rest; rest=$(after)
  log "$name: resident at rest ${base} MiB, peak during ${peak} MiB, after close (+2 s, +10 s, +30 s):${rest} MiB; committed (VmData) at rest ${dbase} MiB, peak ${dpeak} MiB, after $(data) MiB"
  log "  $(tr '\n' ' ' <"$work/tool.log")"
  stop
}
for n in ${SCENARIOS:-1 2 3 4}; do
  case $n in
    1) scenario "stall 30 x 60 MiB declared, 10 B sent" stall $url KEY 30 62914560 10 12 ;;
    2) scenario "stall 30 x 60 MiB declared, 8 MiB sent" stall $url KEY 30 62914560 8388608 12 ;;
    3) scenario "gzip bomb 30 x 60 MiB of zeros" bomb $url KEY 30 62914560 ;;
    4) scenario "stall 100 x 60 MiB declared, 8 MiB sent" stall $url KEY 100 62914560 8388608 12 ;;
  esac
done
echo "results: $out"
