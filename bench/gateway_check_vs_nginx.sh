#!/usr/bin/env bash
# The gateway hot path: geoledgerd GET /v1/gateway/check (a residency
# decision, audit-logged through the ledger's group commit) against nginx
# returning a fixed 200.
#
# One invocation starts nginx and, in turn, geoledgerd with
# --decision-audit=sync and with --decision-audit=async (fresh data dir each),
# loads a small policy (3 regions, 1 tenant) and a decide-scoped token, then:
#   1. full load: the same wrk settings against each server (a wrk Lua script
#      adds the bearer token and the four X- headers; persistent connections,
#      no Connection header). nginx is loaded before the first mode and again
#      after each mode's full-load run, and each mode is compared with the
#      mean of the nginx runs just before and just after it, so a host whose
#      speed drifts during the invocation skews the ratio less; prints
#        ratio geoledgerd(MODE)/nginx = R (geoledgerd N req/s, nginx M req/s: B before, A after)
#      and the CPU per request of nginx (all its processes) in those runs.
#   2. paced load: for each audit mode, wrk paced by a Lua delay() so the
#      offered rate is about HALF_FRACTION of that mode's full-load rate;
#      prints the achieved rate and p50/p90/p99 latency, then the same paced
#      load against nginx (the machine's latency floor at that rate), and the
#      latency geoledgerd itself measured for those checks (its
#      geoledger_http_request_duration_seconds buckets: from a parsed request
#      to the answer handed to the socket, without wrk's own scheduling).
#   3. open-loop load at the same target rate (bench/open_loop: Poisson
#      arrivals over the same number of persistent connections, latency from
#      each request's scheduled time, so no coordinated omission and no
#      millisecond bursts), against geoledgerd and then against nginx, with
#      geoledgerd's own buckets for those checks; skipped, with a line saying
#      so, when the open_loop binary has not been built.
#   4. CPU per request of each geoledgerd thread group during the full-load
#      run (from /proc; "geoledgerd" is the HTTP threads, gl-audit-* the
#      ledger, rocksdb:* its flushes and compactions).
# Every decision is allowed (acme, personal, read, eu-west-1), so every
# request writes one audit entry. Per-tenant and per-token rate limits are
# disabled for the run (they would cap one tenant at 1000 req/s).
# It stops everything it started and builds nothing.
#
# Environment (all optional):
#   GEOLEDGERD        geoledgerd binary     [<repo>/build/server/geoledgerd]
#   NGINX             nginx binary          [/usr/sbin/nginx]
#   DURATION          wrk duration per run  [10s]   (Ns, Nm or N seconds)
#   WARMUP            untimed warm-up run   [2s]    (0 disables)
#   WRK_THREADS       wrk -t                [2]
#   WRK_CONNECTIONS   wrk -c                [64]
#   SERVER_WORKERS    geoledgerd --threads and nginx worker_processes [2]
#   STARTUP_TIMEOUT   seconds to wait for each server to become ready [30]
#   HALF_FRACTION     offered load of the paced run, as a fraction of full [0.5]
#   MODES             audit modes to measure [sync async]
#   OPEN_LOOP         open_loop binary      [<repo>/build/bench/open_loop]
#
# Requires: wrk, curl, python3 (free-port helper), nginx (Debian nginx-light is enough).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

wrk_vs_nginx_setup
HALF_FRACTION="${HALF_FRACTION:-0.5}"
MODES="${MODES:-sync async}"
OPEN_LOOP="${OPEN_LOOP:-$REPO_ROOT/build/bench/open_loop}"

# ---- nginx ------------------------------------------------------------------
start_nginx_fixed200 "$WORK/nginx" "$SERVER_WORKERS"
NGINX_URL="$NGINX_BASE/v1/gateway/check"
check_keepalive nginx "$NGINX_URL"

# ---- load -------------------------------------------------------------------

# CPU time (utime + stime, clock ticks) of every thread of the processes given.
proc_ticks() {
  local p t total=0
  for p in "$@"; do
    for t in /proc/"$p"/task/*; do
      total=$(( total + $(awk '{ print $14 + $15 }' "$t/stat") ))
    done
  done
  echo "$total"
}
# nginx's master and its workers (the processes whose parent is the master).
NGINX_PIDS=("$NGINX_PID" $(awk -v p="$NGINX_PID" '$4 == p { print $1 }' /proc/[0-9]*/stat 2>/dev/null))
# run_nginx_full OUTFILE: nginx at full load; prints its CPU per request on the log.
run_nginx_full() {
  local before after reqs
  rm -f "$WORK/warmup.txt"
  before="$(proc_ticks "${NGINX_PIDS[@]}")"
  run_wrk nginx "$NGINX_URL" "$1" "$WORK/nginx.lua"
  after="$(proc_ticks "${NGINX_PIDS[@]}")"
  reqs="$(awk '/requests in/ { n += $1 } END { print n }' "$1" $([[ -s "$WORK/warmup.txt" ]] && echo "$WORK/warmup.txt"))"
  NGINX_CPU="$(awk -v d="$(( after - before ))" -v hz="$(getconf CLK_TCK)" -v r="$reqs" 'BEGIN { printf "%.1f", d * 1e6 / hz / r }')"
}

# CPU time (utime + stime, clock ticks) per thread name of process $1.
thread_ticks() {
  local t
  for t in /proc/"$1"/task/*; do
    printf '%s %s\n' "$(tr ' ' '_' <"$t/comm")" "$(awk '{ print $14 + $15 }' "$t/stat")"
  done | awk '{ sum[$1] += $2 } END { for (n in sum) print n, sum[n] }' | sort
}
# cpu_per_request BEFORE AFTER REQUESTS: microseconds of CPU per request, by thread name.
cpu_per_request() {
  local hz
  hz="$(getconf CLK_TCK)"
  join "$1" "$2" | awk -v r="$3" -v hz="$hz" '{
    us = ($3 - $2) * 1e6 / hz / r; total += us
    if (us > 0.05) printf "%s=%.1fus ", $1, us }
    END { printf "total=%.1fus per request\n", total }'
}

CORES="$(nproc)"
echo "geoledgerd: $GEOLEDGERD (--threads $SERVER_WORKERS, access log off, log level warn, rate limits off)"
echo "nginx:      $NGINX (pid $NGINX_PID, worker_processes $SERVER_WORKERS, access_log off, fixed 200) at $NGINX_URL"
echo "machine:    $CORES cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); nothing is pinned:"
echo "            the server under test and wrk (-t$WRK_THREADS) share all $CORES cores."
echo "data dir:   $WORK (filesystem $(df -T "$WORK" | awk 'NR==2 { print $2 }'))"
echo "warm-up:    ${WARMUP_S}s untimed wrk run before each measurement"
echo

gateway_lua "$WORK/nginx.lua" "unused" 0
run_nginx_full "$WORK/wrk-nginx.txt"
NGINX_RPS="$(rps "$WORK/wrk-nginx.txt")"
NGINX_CPUS=("$NGINX_CPU")

SUMMARY=()
for mode in $MODES; do
  start_gateway_server "$mode"
  gateway_lua "$WORK/full-$mode.lua" "$TOKEN" 0
  rm -f "$WORK/warmup.txt"
  thread_ticks "$GL_PID" >"$WORK/ticks-before-$mode.txt"
  run_wrk "geoledgerd($mode)" "$GL_URL" "$WORK/wrk-$mode.txt" "$WORK/full-$mode.lua"
  thread_ticks "$GL_PID" >"$WORK/ticks-after-$mode.txt"
  FULL="$(rps "$WORK/wrk-$mode.txt")"
  run_nginx_full "$WORK/wrk-nginx-after-$mode.txt"
  NGINX_AFTER="$(rps "$WORK/wrk-nginx-after-$mode.txt")"
  NGINX_CPUS+=("$NGINX_CPU")
  SUMMARY+=("$(awk -v g="$FULL" -v b="$NGINX_RPS" -v a="$NGINX_AFTER" -v m="$mode" 'BEGIN {
    n = (b + a) / 2
    printf "ratio geoledgerd(%s)/nginx = %.2f (geoledgerd %.0f req/s, nginx %.0f req/s: %.0f before, %.0f after)", m, g / n, g, n, b, a }')")
  NGINX_RPS="$NGINX_AFTER"
  SUMMARY+=("full   geoledgerd($mode): $(pctl "$WORK/wrk-$mode.txt")")
  # The warm-up run is inside the window too: count its requests as well.
  REQS="$(awk '/requests in/ { n += $1 } END { print n }' "$WORK/wrk-$mode.txt" \
    $([[ -s "$WORK/warmup.txt" ]] && echo "$WORK/warmup.txt"))"
  SUMMARY+=("cpu    geoledgerd($mode): $(cpu_per_request "$WORK/ticks-before-$mode.txt" "$WORK/ticks-after-$mode.txt" "$REQS")")
  # Paced run: each connection waits PACE ms after each answer. A connection's
  # rate is 1000 / (PACE + latency), so a 3 s calibration run measures the
  # latency at this load and PACE is corrected for it once.
  TARGET="$(awk -v r="$FULL" -v f="$HALF_FRACTION" 'BEGIN { printf "%.0f", r * f }')"
  PACE="$(awk -v c="$WRK_CONNECTIONS" -v t="$TARGET" 'BEGIN { printf "%.3f", c * 1000 / t }')"
  gateway_lua "$WORK/half-$mode.lua" "$TOKEN" "$PACE"
  wrk_bounded 40 "$WORK/calibrate-$mode.txt" "${WRK_ARGS[@]}" -s "$WORK/half-$mode.lua" -d3s "$GL_URL" \
    || die "wrk calibration against geoledgerd($mode) failed"
  # Never below half the uncorrected pace: a calibration run disturbed by a
  # latency spike would otherwise turn the paced runs into full-load ones.
  PACE="$(awk -v c="$WRK_CONNECTIONS" -v t="$TARGET" -v p="$PACE" -v a="$(rps "$WORK/calibrate-$mode.txt")" 'BEGIN {
    lat = c * 1000 / a - p; q = c * 1000 / t - lat; if (q < p / 2) q = p / 2; printf "%.3f", q }')"
  note "geoledgerd($mode): target ${TARGET} req/s, pace ${PACE} ms per connection after calibration"
  gateway_lua "$WORK/half-$mode.lua" "$TOKEN" "$PACE"
  gateway_buckets "http://$GL_ADDR" >"$WORK/buckets-before-$mode.txt"
  run_wrk "geoledgerd($mode) paced, ${PACE} ms between requests per connection" "$GL_URL" \
    "$WORK/wrk-half-$mode.txt" "$WORK/half-$mode.lua"
  gateway_buckets "http://$GL_ADDR" >"$WORK/buckets-after-$mode.txt"
  HALF="$(rps "$WORK/wrk-half-$mode.txt")"
  if awk -v h="$HALF" -v t="$TARGET" 'BEGIN { exit !(h < 0.8 * t || h > 1.2 * t) }'; then
    note "WARNING: the paced run reached $HALF req/s against a target of $TARGET: not at the intended load"
    SUMMARY+=("WARNING: paced geoledgerd($mode) ran at $HALF req/s, target $TARGET (outside ±20 %)")
  fi
  SUMMARY+=("$(awk -v h="$HALF" -v g="$FULL" -v m="$mode" -v p="$(pctl "$WORK/wrk-half-$mode.txt")" 'BEGIN {
    printf "paced  geoledgerd(%s): %.0f req/s (%.2f of its full-load rate), %s", m, h, h / g, p }')")
  SUMMARY+=("server geoledgerd($mode) paced: $(server_latency "$WORK/buckets-before-$mode.txt" "$WORK/buckets-after-$mode.txt")")
  # The same paced load against nginx: what this machine's scheduling gives
  # a trivial server at that rate (the floor under the p99 above).
  run_wrk "nginx paced like geoledgerd($mode), ${PACE} ms between requests per connection" "$NGINX_URL" \
    "$WORK/wrk-half-nginx-$mode.txt" "$WORK/half-$mode.lua"
  SUMMARY+=("$(awk -v h="$(rps "$WORK/wrk-half-nginx-$mode.txt")" -v m="$mode" -v p="$(pctl "$WORK/wrk-half-nginx-$mode.txt")" 'BEGIN {
    printf "paced  nginx at geoledgerd(%s)'"'"'s pace: %.0f req/s, %s", m, h, p }')")
  if [[ -x "$OPEN_LOOP" ]]; then
    gateway_buckets "http://$GL_ADDR" >"$WORK/buckets-before-open-$mode.txt"
    run_open_loop "geoledgerd($mode)" "$GL_ADDR" /v1/gateway/check "$TARGET" "$WORK/open-$mode.txt"
    gateway_buckets "http://$GL_ADDR" >"$WORK/buckets-after-open-$mode.txt"
    run_open_loop "nginx at geoledgerd($mode)'s target" "${NGINX_BASE#http://}" /v1/gateway/check "$TARGET" \
      "$WORK/open-nginx-$mode.txt"
    SUMMARY+=("open   geoledgerd($mode) at $TARGET req/s: $(pctl "$WORK/open-$mode.txt")")
    SUMMARY+=("server geoledgerd($mode) open-loop: $(server_latency "$WORK/buckets-before-open-$mode.txt" \
      "$WORK/buckets-after-open-$mode.txt")")
    SUMMARY+=("open   nginx at $TARGET req/s: $(pctl "$WORK/open-nginx-$mode.txt")")
  else
    SUMMARY+=("open   skipped: no open_loop at $OPEN_LOOP (cmake --build build --target open_loop)")
  fi
  stop_pid geoledgerd "$GL_PID"
  GL_PID=""
done
SUMMARY+=("full   nginx: $(pctl "$WORK/wrk-nginx.txt") (first run)")
SUMMARY+=("cpu    nginx: ${NGINX_CPUS[*]} us per request (all nginx processes; each full-load run in turn)")
echo "==== summary"
printf '%s\n' "${SUMMARY[@]}"
