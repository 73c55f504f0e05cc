#!/usr/bin/env bash
# HTTP data keys for other services: POST /v1/keys/datakey, driven by wrk over
# persistent connections.
#
# Starts `geoledgerd --dev` on 127.0.0.1 (port picked by the kernel) with a
# fresh data directory (mode 0700), then with the bootstrap admin token:
#   PUT /v1/regions/eu-west-1   {"country":"IE","name":"Ireland"}
#   PUT /v1/tenants/acme        home eu-west-1, personal data allowed in eu-west-1
# (without that policy every datakey call is refused with 403), creates a
# token with scope `keys` (and one with audit:read for the after-run checks),
# and gives SUBJECTS subjects their data key with one datakey call each.
#
# Two request mixes, each for every connection count, each after an untimed
# warm-up:
#   existing  every request names one of the SUBJECTS existing subjects
#             (round-robin): the steady state, one audit entry per request.
#   new       every request names a subject never seen before: the subject
#             key is created (one synced keys write) and two audit entries are
#             written (key.created, key.datakey.issued).
# A datakey answer is sent only after its audit entries are durable (group
# commit), so these numbers are bound by fsync.
#
# The wrk Lua script counts responses: only a 200 whose body carries
# "wrapped_key" counts as a success; every other status is counted (and 403 /
# 429 / 503 separately), never as throughput. Each run prints one line
#   GLBENCH mix=.. conns=C ok=N non200=M ... requests_per_s=R p50_ms=.. p99_ms=..
# plus the ledger growth during the run, and the script ends with a table.
#
# Environment (all optional):
#   BUILD_DIR        where geoledgerd is built            [<repo>/build-bench]
#   GEOLEDGERD       geoledgerd binary                    [$BUILD_DIR/server/geoledgerd]
#   SKIP_BUILD=1     do not run ninja for geoledgerd
#   DURATION         seconds per measured run             [10] (max 60)
#   WARMUP           seconds of untimed warm-up per run   [2]  (0 disables)
#   CONNECTIONS      wrk -c values                        ["16 64"]
#   MIXES            which request mixes to run           ["existing new"]
#   SUBJECTS         existing subjects to cycle over      [256] (1-100000)
#   WRK_THREADS      wrk -t                               [2]
#   SERVER_THREADS   geoledgerd --threads                 [2]
#   BENCH_TMPDIR     parent of the data directory (a real disk, not tmpfs) [${TMPDIR:-/tmp}]
#   STARTUP_TIMEOUT  seconds to wait for geoledgerd        [30]
#
# Requires: wrk, curl, python3. No token or key is printed or written outside
# the temporary directory, which is deleted at the end.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$REPO_ROOT/build-bench}"
GEOLEDGERD="${GEOLEDGERD:-$BUILD_DIR/server/geoledgerd}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-16 64}"
MIXES="${MIXES:-existing new}"
SUBJECTS="${SUBJECTS:-256}"
WRK_THREADS="${WRK_THREADS:-2}"
SERVER_THREADS="${SERVER_THREADS:-2}"
BENCH_TMPDIR="${BENCH_TMPDIR:-${TMPDIR:-/tmp}}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-30}"
HOST=127.0.0.1  # loopback only
REGION=eu-west-1
TENANT=acme

[[ "$DURATION" =~ ^[0-9]+$ ]] && (( DURATION > 0 && DURATION <= 60 )) || die "DURATION must be 1-60 seconds"
[[ "$WARMUP" =~ ^[0-9]+$ ]] && (( WARMUP <= 60 )) || die "WARMUP must be 0-60 seconds"
[[ "$SUBJECTS" =~ ^[0-9]+$ ]] && (( SUBJECTS >= 1 && SUBJECTS <= 100000 )) || die "SUBJECTS must be 1-100000"
for m in $MIXES; do [[ "$m" == existing || "$m" == new ]] || die "MIXES: unknown mix '$m' (existing, new)"; done
for c in $CONNECTIONS; do [[ "$c" =~ ^[0-9]+$ ]] && (( c >= 1 && c <= 1000 )) || die "CONNECTIONS: bad value '$c'"; done
require_tools wrk curl python3
FSTYPE="$(require_real_disk "$BENCH_TMPDIR")"

if [[ "${SKIP_BUILD:-0}" != 1 && "$GEOLEDGERD" == "$BUILD_DIR/server/geoledgerd" ]]; then
  build_targets "$REPO_ROOT" "$BUILD_DIR" geoledgerd
fi
[[ -x "$GEOLEDGERD" ]] || die "geoledgerd not found at $GEOLEDGERD"

WORK="$(mktemp -d "$BENCH_TMPDIR/geoledger-http-datakey.XXXXXX")"
install_cleanup

# ---- geoledgerd -------------------------------------------------------------
DATA="$WORK/data"
mkdir -m 700 "$DATA"
start_geoledgerd "$DATA" "$WORK/geoledgerd.log" --region "$REGION" \
  --threads "$SERVER_THREADS" --access-log false --log-level warn \
  --rate-limit-tenant-rps 0 --rate-limit-token-rps 0
BASE="http://$GL_ADDR"

# Token secrets stay in files under $WORK (mode 0600) and in the environment of wrk.
umask 077
admin_put() {  # admin_put PATH JSON
  curl -sf --max-time 10 -X PUT -H @<(auth_header "$DATA/admin.token") -H 'Content-Type: application/json' \
    -d "$2" "$BASE$1" >/dev/null || die "PUT $1 failed"
}

# ---- residency policy, tokens -----------------------------------------------
admin_put "/v1/regions/$REGION" '{"country":"IE","name":"Ireland"}'
admin_put "/v1/tenants/$TENANT" "{\"home_region\":\"$REGION\",\"status\":\"active\",\"allowed_regions\":{\"personal\":[\"$REGION\"]}}"
create_token bench-keys keys "$WORK/keys.token"
create_token bench-reader audit:read "$WORK/read.token"

# Keep-alive must hold, or the numbers measure connection setup.
check_keepalive geoledgerd "$BASE/healthz"

# ---- existing subjects ----------------------------------------------------------
# One datakey call per subject over one keep-alive connection; every answer
# must be a 200 carrying a wrapped key. Nothing from the answers is kept.
t0=$(date +%s.%N)
GL_BENCH_TOKEN_FILE="$WORK/keys.token" python3 - "$GL_ADDR" "$TENANT" "$SUBJECTS" <<'PY' || die "creating the subjects failed"
import http.client, json, os, sys
host, port = sys.argv[1].rsplit(":", 1)
tenant, n = sys.argv[2], int(sys.argv[3])
token = open(os.environ["GL_BENCH_TOKEN_FILE"]).read().strip()
conn = http.client.HTTPConnection(host, int(port), timeout=30)
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
for i in range(1, n + 1):
    conn.request("POST", "/v1/keys/datakey", json.dumps({"tenant": tenant, "subject": "subject-%d" % i}), headers)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200 or b'"wrapped_key"' not in body:
        sys.exit("datakey for subject %d answered %d" % (i, r.status))
PY
t1=$(date +%s.%N)
SETUP_RATE="$(python3 -c "import sys; print('%.0f' % ($SUBJECTS / ($t1 - $t0)))")"

# ---- wrk script ---------------------------------------------------------------
cat >"$WORK/datakey.lua" <<'LUA'
-- POST /v1/keys/datakey. GL_BENCH_MIX=existing: subjects subject-1..N in
-- round-robin (each thread starting elsewhere); new: a subject never used
-- before on every request. Only a 200 carrying "wrapped_key" counts.
local mix = os.getenv("GL_BENCH_MIX")
local n = tonumber(os.getenv("GL_BENCH_SUBJECTS"))
local tenant = os.getenv("GL_BENCH_TENANT")
local run = os.getenv("GL_BENCH_RUN")
local headers = {["Content-Type"] = "application/json",
                 ["Authorization"] = "Bearer " .. os.getenv("GL_BENCH_TOKEN")}

local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  ok = 0; non200 = 0; s403 = 0; s429 = 0; s503 = 0; bad_body = 0
  counter = tid * 7919
end
function request()
  counter = counter + 1
  local subject
  if mix == "new" then
    subject = string.format("new-%s-%d-%d", run, tid, counter)
  else
    subject = string.format("subject-%d", counter % n + 1)
  end
  local body = string.format('{"tenant":"%s","subject":"%s"}', tenant, subject)
  return wrk.format("POST", "/v1/keys/datakey", headers, body)
end
function response(status, headers, body)
  if status == 200 then
    if string.find(body, '"wrapped_key"', 1, true) then ok = ok + 1 else bad_body = bad_body + 1 end
  else
    non200 = non200 + 1
    if status == 403 then s403 = s403 + 1 elseif status == 429 then s429 = s429 + 1
    elseif status == 503 then s503 = s503 + 1 end
  end
end
function done(summary, latency, requests)
  local t = {ok = 0, non200 = 0, s403 = 0, s429 = 0, s503 = 0, bad_body = 0}
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + th:get(k) end
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format("GLBENCH mix=%s ok=%d non200=%d s403=%d s429=%d s503=%d bad_body=%d socket_errors=%d " ..
    "seconds=%.3f requests_per_s=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    mix, t.ok, t.non200, t.s403, t.s429, t.s503, t.bad_body, e.connect + e.read + e.write + e.timeout,
    secs, t.ok / secs, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
LUA

# wrk runs in the background and is waited for, so a signal ends the run at once.
RUN_NO=0
run_wrk() {  # run_wrk MIX SECONDS CONNS OUTFILE
  local mix="$1" secs="$2" conns="$3" out="$4"
  RUN_NO=$(( RUN_NO + 1 ))
  GL_BENCH_TOKEN="$(tr -d '[:space:]' <"$WORK/keys.token")" GL_BENCH_MIX="$mix" GL_BENCH_SUBJECTS="$SUBJECTS" \
    GL_BENCH_TENANT="$TENANT" GL_BENCH_RUN="$RUN_NO" \
    timeout $(( secs + 30 )) wrk -t"$WRK_THREADS" -c"$conns" -d"${secs}s" --latency -s "$WORK/datakey.lua" \
    "$BASE/v1/keys/datakey" >"$out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { local rc=$?; WRK_PID=""; cat "$out" >&2; return "$rc"; }
  WRK_PID=""
}

echo "geoledgerd: $GEOLEDGERD (pid $GL_PID, --threads $SERVER_THREADS, access log off, log level warn, rate limits off, --dev, region $REGION) at $BASE"
echo "data dir:   $DATA ($FSTYPE)"
echo "machine:    $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); nothing pinned,"
echo "            geoledgerd and wrk (-t$WRK_THREADS) share the cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "subjects:   $SUBJECTS created with one datakey call each over one connection: $SETUP_RATE calls/s"
echo

: >"$WORK/results.txt"
for mix in $MIXES; do
  for c in $CONNECTIONS; do
    if (( WARMUP > 0 )); then
      run_wrk "$mix" "$WARMUP" "$c" "$WORK/warmup.txt" || die "wrk warm-up failed"
    fi
    before="$(ledger_size)"
    echo "==== [$mix] wrk -t$WRK_THREADS -c$c -d${DURATION}s --latency -s datakey.lua $BASE/v1/keys/datakey  (load $(cut -d' ' -f1 /proc/loadavg))"
    run_wrk "$mix" "$DURATION" "$c" "$WORK/wrk-$mix-$c.txt" || die "wrk failed"
    after="$(ledger_size)"
    cat "$WORK/wrk-$mix-$c.txt"
    line="$(grep '^GLBENCH ' "$WORK/wrk-$mix-$c.txt")" || die "no GLBENCH line from the wrk script"
    ok="$(sed -E 's/.* ok=([0-9]+).*/\1/' <<<"$line")"
    per=1; [[ "$mix" == new ]] && per=2
    echo "ledger grew by $(( after - before )) entries during the run; $ok datakeys answered 200 (expect ~$(( ok * per )) entries, plus requests in flight at the end)"
    echo "conns=$c $line" >>"$WORK/results.txt"
    echo
  done
done

python3 - "$WORK/results.txt" <<'PY'
import re, sys
print("| mix | connections | datakeys/s (200 only) | p50 ms | p90 ms | p99 ms | max ms | non-200 | socket errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for line in open(sys.argv[1]):
    kv = dict(re.findall(r"(\w+)=([0-9.]+)", line))
    mix = re.search(r"mix=(\w+)", line).group(1)
    print(f"| {mix} | {kv['conns']} | {float(kv['requests_per_s']):,.0f} | {float(kv['p50_ms']):.2f} | "
          f"{float(kv['p90_ms']):.2f} | {float(kv['p99_ms']):.2f} | {float(kv['max_ms']):.2f} | "
          f"{kv['non200']} | {kv['socket_errors']} |")
PY
