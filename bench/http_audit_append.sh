#!/usr/bin/env bash
# HTTP durable audit appends: POST /v1/audit/events with a fixed batch of
# events per request, driven by wrk over persistent connections.
#
# Starts `geoledgerd --dev` on 127.0.0.1 (port picked by the kernel) with a
# fresh data directory, creates a token with scope audit:write (and one with
# audit:read for the after-run checks) using the bootstrap admin token, then
# for each connection count runs an untimed warm-up and a measured wrk run.
# The wrk Lua script counts responses: only a 200 whose body carries
# "indexes" counts as acknowledged, so 429/503 answers are never counted as
# throughput. Each run prints one line
#   GLBENCH conns=C ok=N non2xx=M ... events_per_s=E p50_ms=.. p99_ms=..
# and the script ends with a table. The answer is sent only once the events
# are durable, so wrk's latency is the time to acknowledge.
#
# Environment (all optional):
#   BUILD_DIR        where geoledgerd is built            [<repo>/build-bench]
#   GEOLEDGERD       geoledgerd binary                    [$BUILD_DIR/server/geoledgerd]
#   SKIP_BUILD=1     do not run ninja for geoledgerd
#   DURATION         seconds per measured run             [10] (max 60)
#   WARMUP           seconds of untimed warm-up per run   [2]  (0 disables)
#   EVENTS           events per request                   [50]
#   CONNECTIONS      wrk -c values                        ["4 16 64"]
#   WRK_THREADS      wrk -t                               [2]
#   SERVER_THREADS   geoledgerd --threads                 [2]
#   WITH_SUBJECT     1: every event carries "subject" (the server stores its
#                    keyed pseudonym, as for real personal-data events); 0: none,
#                    details padded to the same stored size    [1]
#   BENCH_TMPDIR     parent of the data directory (a real disk, not tmpfs) [${TMPDIR:-/tmp}]
#   STARTUP_TIMEOUT  seconds to wait for geoledgerd        [30]
#
# Requires: wrk, curl, python3. No token is printed or written outside the
# temporary directory, which is deleted at the end.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$REPO_ROOT/build-bench}"
GEOLEDGERD="${GEOLEDGERD:-$BUILD_DIR/server/geoledgerd}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
EVENTS="${EVENTS:-50}"
CONNECTIONS="${CONNECTIONS:-4 16 64}"
WRK_THREADS="${WRK_THREADS:-2}"
SERVER_THREADS="${SERVER_THREADS:-2}"
BENCH_TMPDIR="${BENCH_TMPDIR:-${TMPDIR:-/tmp}}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-30}"
HOST=127.0.0.1  # loopback only
WITH_SUBJECT="${WITH_SUBJECT:-1}"
# details.note length that makes each stored entry ~300 bytes (as bench/ledger_bench.cc);
# without a subject the 34 bytes of the pseudonym field go to the padding.
PAD_BYTES=142
[[ "$WITH_SUBJECT" == 1 ]] || PAD_BYTES=176

[[ "$DURATION" =~ ^[0-9]+$ ]] && (( DURATION > 0 && DURATION <= 60 )) || die "DURATION must be 1-60 seconds"
[[ "$WARMUP" =~ ^[0-9]+$ ]] && (( WARMUP <= 60 )) || die "WARMUP must be 0-60 seconds"
[[ "$EVENTS" =~ ^[0-9]+$ ]] && (( EVENTS >= 1 && EVENTS <= 1000 )) || die "EVENTS must be 1-1000"
require_tools wrk curl python3
FSTYPE="$(require_real_disk "$BENCH_TMPDIR")"

if [[ "${SKIP_BUILD:-0}" != 1 && "$GEOLEDGERD" == "$BUILD_DIR/server/geoledgerd" ]]; then
  build_targets "$REPO_ROOT" "$BUILD_DIR" geoledgerd
fi
[[ -x "$GEOLEDGERD" ]] || die "geoledgerd not found at $GEOLEDGERD"

WORK="$(mktemp -d "$BENCH_TMPDIR/geoledger-http-append.XXXXXX")"
install_cleanup

# ---- geoledgerd -------------------------------------------------------------
DATA="$WORK/data"
mkdir -m 700 "$DATA"
start_geoledgerd "$DATA" "$WORK/geoledgerd.log" --region eu-west-1 \
  --threads "$SERVER_THREADS" --access-log false --log-level warn
BASE="http://$GL_ADDR"

# Token secrets stay in files under $WORK (mode 0600) and in the environment of wrk.
umask 077
create_token bench audit:write "$WORK/write.token"
create_token bench-reader audit:read "$WORK/read.token"

# Keep-alive must hold, or the numbers measure connection setup.
check_keepalive geoledgerd "$BASE/healthz"

# ---- wrk script ---------------------------------------------------------------
cat >"$WORK/append.lua" <<'LUA'
-- POST a fixed batch of audit events; count acknowledged (200 + "indexes")
-- and refused responses per thread, summed in done().
local events = tonumber(os.getenv("GL_BENCH_EVENTS"))
local pad = string.rep("x", tonumber(os.getenv("GL_BENCH_PAD")))
local with_subject = os.getenv("GL_BENCH_SUBJECT") == "1"
local list = {}
for i = 1, events do
  local subject = with_subject and string.format('"subject":"customer-%d",', 1000000 + i) or ""
  list[i] = string.format('{"tenant":"acme-corp","action":"record.read","resource":"customers/%d",' ..
    '"outcome":"allowed",%s"details":{"note":"%s"}}', 1000000 + i, subject, pad)
end
wrk.method = "POST"
wrk.body = '{"events":[' .. table.concat(list, ",") .. ']}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("GL_BENCH_TOKEN")

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; non2xx = 0; s429 = 0; s503 = 0; bad_body = 0 end
function response(status, headers, body)
  if status == 200 then
    if string.find(body, '"indexes"', 1, true) then ok = ok + 1 else bad_body = bad_body + 1 end
  else
    non2xx = non2xx + 1
    if status == 429 then s429 = s429 + 1 elseif status == 503 then s503 = s503 + 1 end
  end
end
function done(summary, latency, requests)
  local t_ok, t_non2xx, t429, t503, t_bad = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    t_ok = t_ok + t:get("ok"); t_non2xx = t_non2xx + t:get("non2xx")
    t429 = t429 + t:get("s429"); t503 = t503 + t:get("s503"); t_bad = t_bad + t:get("bad_body")
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format("GLBENCH ok=%d non2xx=%d s429=%d s503=%d bad_body=%d socket_errors=%d " ..
    "events_per_request=%d seconds=%.3f requests_per_s=%.1f events_per_s=%.0f " ..
    "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    t_ok, t_non2xx, t429, t503, t_bad, e.connect + e.read + e.write + e.timeout,
    events, secs, t_ok / secs, t_ok * events / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
LUA

# wrk runs in the background and is waited for, so a signal ends the run at once.
run_wrk() {  # run_wrk SECONDS CONNS OUTFILE
  local secs="$1" conns="$2" out="$3"
  GL_BENCH_TOKEN="$(tr -d '[:space:]' <"$WORK/write.token")" GL_BENCH_EVENTS="$EVENTS" GL_BENCH_PAD="$PAD_BYTES" GL_BENCH_SUBJECT="$WITH_SUBJECT" \
    timeout $(( secs + 30 )) wrk -t"$WRK_THREADS" -c"$conns" -d"${secs}s" --latency -s "$WORK/append.lua" \
    "$BASE/v1/audit/events" >"$out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { local rc=$?; WRK_PID=""; cat "$out" >&2; return "$rc"; }
  WRK_PID=""
}

echo "geoledgerd: $GEOLEDGERD (pid $GL_PID, --threads $SERVER_THREADS, access log off, log level warn, --dev) at $BASE"
echo "data dir:   $DATA ($FSTYPE)"
echo "machine:    $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); nothing pinned,"
echo "            geoledgerd and wrk (-t$WRK_THREADS) share the cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "request:    POST /v1/audit/events, $EVENTS events per request, each with$([[ "$WITH_SUBJECT" == 1 ]] || echo out) a subject"
echo

: >"$WORK/results.txt"
for c in $CONNECTIONS; do
  if (( WARMUP > 0 )); then
    run_wrk "$WARMUP" "$c" "$WORK/warmup.txt" || die "wrk warm-up failed"
  fi
  before="$(ledger_size)"
  echo "==== wrk -t$WRK_THREADS -c$c -d${DURATION}s --latency -s append.lua $BASE/v1/audit/events"
  run_wrk "$DURATION" "$c" "$WORK/wrk-$c.txt" || die "wrk failed"
  after="$(ledger_size)"
  cat "$WORK/wrk-$c.txt"
  line="$(grep '^GLBENCH ' "$WORK/wrk-$c.txt")" || die "no GLBENCH line from the wrk script"
  ok="$(sed -E 's/.* ok=([0-9]+).*/\1/' <<<"$line")"
  echo "ledger grew by $(( after - before )) entries during the run; acknowledged $(( ok * EVENTS )) events"
  echo "conns=$c $line" >>"$WORK/results.txt"
  echo
done

# Stored entry size, from the last acknowledged batch.
size="$(ledger_size)"
curl -sf --max-time 10 -H @<(auth_header "$WORK/read.token") "$BASE/v1/audit/entries?start=$(( size - EVENTS ))&end=$size" \
  | python3 -c 'import base64, json, sys
e = json.load(sys.stdin)["entries"]
print("stored entry size: mean %.1f bytes over the last %d entries" % (sum(len(base64.b64decode(x["entry"])) for x in e) / len(e), len(e)))'

python3 - "$WORK/results.txt" <<'PY'
import re, sys
print()
print("| connections | events/request | acknowledged events/s | requests/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | socket errors |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for line in open(sys.argv[1]):
    kv = dict(re.findall(r"(\w+)=([0-9.]+)", line))
    print(f"| {kv['conns']} | {kv['events_per_request']} | {float(kv['events_per_s']):,.0f} | {float(kv['requests_per_s']):,.0f} | "
          f"{float(kv['p50_ms']):.2f} | {float(kv['p90_ms']):.2f} | {float(kv['p99_ms']):.2f} | {float(kv['max_ms']):.2f} | "
          f"{kv['non2xx']} | {kv['socket_errors']} |")
print("target (PRODUCT.md): >= 20,000 events/s with p99 <= 10 ms")
PY
