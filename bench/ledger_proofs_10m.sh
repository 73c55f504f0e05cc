#!/usr/bin/env bash
# Proof latency at 10 million entries.
#
# 1. In process: build-bench/bench/ledger_proof_latency builds (once; reused
#    when present) a ledger of ENTRIES ~300-byte entries under
#    $BUILD_DIR/bench-data/ledger-10m, then times individual
#    Ledger::InclusionProof and Ledger::ConsistencyProof calls at random
#    indexes and sizes and prints p50/p90/p99/p99.9/max.
# 2. Over HTTP (HTTP=1, the default): starts geoledgerd --dev on 127.0.0.1
#    over the same directory (laid out as a data directory; starting the
#    service appends a few service events, e.g. token creation, to that
#    ledger), creates an audit:read token and runs wrk against
#    GET /v1/audit/proof/inclusion?index=<random>&tree_size=<ledger size>,
#    counting non-2xx answers in the Lua script. The server is stopped by PID.
#
# Environment (all optional):
#   BUILD_DIR        build directory                          [<repo>/build-bench]
#   DATA_DIR         the 10M ledger fixture                    [$BUILD_DIR/bench-data/ledger-10m]
#   ENTRIES          ledger size to build                      [10000000]
#   SAMPLES          timed calls per proof kind                [100000]
#   MAX_SECONDS      cap per proof kind                        [20] (max 60)
#   HTTP             1 to add the HTTP measurement             [1]
#   DURATION         seconds per wrk run                       [10] (max 60)
#   CONNECTIONS      wrk -c values                             ["1 16"]
#   SERVER_THREADS   geoledgerd --threads                      [2]
#   SKIP_BUILD=1     use the binaries already in BUILD_DIR
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$REPO_ROOT/build-bench}"
DATA_DIR="${DATA_DIR:-$BUILD_DIR/bench-data/ledger-10m}"
ENTRIES="${ENTRIES:-10000000}"
SAMPLES="${SAMPLES:-100000}"
MAX_SECONDS="${MAX_SECONDS:-20}"
HTTP="${HTTP:-1}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-1 16}"
SERVER_THREADS="${SERVER_THREADS:-2}"
STARTUP_TIMEOUT=120  # opening a 10M-entry RocksDB can take a while on a cold cache
HOST=127.0.0.1

[[ "$MAX_SECONDS" =~ ^[0-9]+$ ]] && (( MAX_SECONDS > 0 && MAX_SECONDS <= 60 )) || die "MAX_SECONDS must be 1-60"
[[ "$DURATION" =~ ^[0-9]+$ ]] && (( DURATION > 0 && DURATION <= 60 )) || die "DURATION must be 1-60 seconds"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  targets=(ledger_proof_latency)
  [[ "$HTTP" == 1 ]] && targets+=(geoledgerd)
  build_targets "$REPO_ROOT" "$BUILD_DIR" "${targets[@]}"
fi
TOOL="$BUILD_DIR/bench/ledger_proof_latency"
GEOLEDGERD="$BUILD_DIR/server/geoledgerd"
[[ -x "$TOOL" ]] || die "$TOOL not built"

echo "machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "==== $TOOL --dir $DATA_DIR --entries $ENTRIES --samples $SAMPLES --max-seconds $MAX_SECONDS"
# Building 10M entries takes minutes; the timed part is bounded by MAX_SECONDS per kind.
timeout 3600 "$TOOL" --dir "$DATA_DIR" --entries "$ENTRIES" --samples "$SAMPLES" --max-seconds "$MAX_SECONDS"
echo "fixture: $(du -sh "$DATA_DIR" | cut -f1) on disk"
[[ "$HTTP" == 1 ]] || exit 0

# ---- HTTP ---------------------------------------------------------------------
require_tools wrk curl python3
[[ -x "$GEOLEDGERD" ]] || die "$GEOLEDGERD not built"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/geoledger-proof-http.XXXXXX")"
STOP_TIMEOUT=30  # closing a 10M-entry store (final checkpoint, flush) can take a while
install_cleanup

start_geoledgerd "$DATA_DIR" "$WORK/geoledgerd.log" --region eu-west-1 \
  --threads "$SERVER_THREADS" --access-log false --log-level warn
BASE="http://$GL_ADDR"
umask 077
DATA="$DATA_DIR" create_token bench-proofs audit:read "$WORK/read.token"
SIZE="$(ledger_size)"

cat >"$WORK/proof.lua" <<'LUA'
local size = tonumber(os.getenv("GL_BENCH_SIZE"))
wrk.headers["Authorization"] = "Bearer " .. os.getenv("GL_BENCH_TOKEN")
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  ok = 0; non2xx = 0
  math.randomseed(os.time() + #threads * 7919 + math.floor(os.clock() * 1e6))
end
function request()
  return wrk.format("GET", "/v1/audit/proof/inclusion?index=" .. math.random(0, size - 1) .. "&tree_size=" .. size)
end
function response(status, headers, body)
  if status == 200 and string.find(body, '"proof"', 1, true) then ok = ok + 1 else non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local t_ok, t_bad = 0, 0
  for _, t in ipairs(threads) do t_ok = t_ok + t:get("ok"); t_bad = t_bad + t:get("non2xx") end
  local e = summary.errors
  io.write(string.format("GLBENCH ok=%d non2xx=%d socket_errors=%d requests_per_s=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    t_ok, t_bad, e.connect + e.read + e.write + e.timeout, t_ok / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
LUA

echo
echo "geoledgerd pid $GL_PID (--threads $SERVER_THREADS) over $DATA_DIR, ledger size $SIZE"
for c in $CONNECTIONS; do
  t=$(( c < 2 ? 1 : 2 ))
  echo "==== wrk -t$t -c$c -d${DURATION}s --latency -s proof.lua $BASE/v1/audit/proof/inclusion?index=RANDOM&tree_size=$SIZE"
  GL_BENCH_TOKEN="$(cat "$WORK/read.token")" GL_BENCH_SIZE="$SIZE" \
    timeout $(( DURATION + 30 )) wrk -t"$t" -c"$c" -d"${DURATION}s" --latency -s "$WORK/proof.lua" "$BASE/" >"$WORK/wrk.txt" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { WRK_PID=""; cat "$WORK/wrk.txt" >&2; die "wrk failed"; }
  WRK_PID=""
  cat "$WORK/wrk.txt"
  echo
done
