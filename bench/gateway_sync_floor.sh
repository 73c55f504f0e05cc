#!/usr/bin/env bash
# Sync-audited gateway checks next to the durability floor of this machine.
#
# A sync-audited check is answered only once its audit entry is on the disk.
# bench/durable_floor serve is a minimal server under that rule: no routing,
# no decision, no storage engine; it appends a 300-byte record per request and
# answers after an fdatasync covering it, in two designs (reactors that sync
# themselves, or a sync thread that batches while reactors keep reading; see
# bench/durable_floor.cc). The better of the two next to nginx is what this
# disk leaves to a sync-audited check with the same wrk settings.
#
# One invocation:
#   1. times write + fdatasync of 300 bytes, one after another, in the data
#      directory's file system, before any load (durable_floor fsync);
#   2. starts nginx (fixed 200), the floor in both designs and geoledgerd
#      with --decision-audit=sync (the policy and token of
#      bench/gateway_check_vs_nginx.sh), then, ROUNDS times, loads each in
#      turn with the same wrk settings and prints per round
#        round K: nginx N req/s; floor L (leader) / S (syncer), best F (F/N of nginx); geoledgerd(sync) G (G/N of nginx, G/F of the floor)
#      and the means over the rounds;
#   3. loads the floor (leader design) without its fdatasync (--no-sync) once: the same
#      server without the disk;
#   4. offers both floor designs, nginx and geoledgerd(sync) the same
#      open-loop load (bench/open_loop, Poisson arrivals): HALF_FRACTION of
#      the better design's mean full-load rate, and prints each one's latency
#      percentiles, with geoledgerd's own measurement of its checks (skipped
#      without open_loop);
#   5. prints how many records each floor made durable per fdatasync.
# It stops everything it started and builds nothing.
#
# Environment (all optional): GEOLEDGERD, NGINX, DURATION [10s], WARMUP [2s],
# WRK_THREADS [2], WRK_CONNECTIONS [64], SERVER_WORKERS [2] (geoledgerd
# --threads, nginx worker_processes and the floor's --threads),
# STARTUP_TIMEOUT [30], as in bench/gateway_check_vs_nginx.sh, and
#   ROUNDS          full-load rounds             [2]
#   HALF_FRACTION   open-loop rate, as a fraction of the floor's full rate [0.5]
#   FLOOR           durable_floor binary         [<repo>/build/bench/durable_floor]
#   OPEN_LOOP       open_loop binary             [<repo>/build/bench/open_loop]
# TMPDIR chooses the file system of the data directories (not tmpfs).
#
# Requires: wrk, curl, python3, nginx (Debian nginx-light is enough).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

wrk_vs_nginx_setup
ROUNDS="${ROUNDS:-2}"
HALF_FRACTION="${HALF_FRACTION:-0.5}"
FLOOR="${FLOOR:-$REPO_ROOT/build/bench/durable_floor}"
OPEN_LOOP="${OPEN_LOOP:-$REPO_ROOT/build/bench/open_loop}"
[[ "$ROUNDS" =~ ^[1-9][0-9]?$ ]] || die "ROUNDS must be 1-99"
[[ -x "$FLOOR" ]] || die "no durable_floor at $FLOOR (cmake --build build --target durable_floor)"
FSTYPE="$(require_real_disk "$WORK")"

echo "machine:  $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); nothing is pinned"
echo "data:     $WORK (file system $FSTYPE)"
echo "wrk:      ${WRK_ARGS[*]} -d$DURATION after a ${WARMUP_S}s warm-up; servers with $SERVER_WORKERS threads or workers"
"$FLOOR" fsync --log "$WORK/fsync-probe" --count 2000 --record-bytes 300 | tee "$WORK/fsync.txt"
echo

# ---- the servers: nginx, the two floors, geoledgerd ------------------------------
start_nginx_fixed200 "$WORK/nginx" "$SERVER_WORKERS"
NGINX_URL="$NGINX_BASE/v1/gateway/check"
check_keepalive nginx "$NGINX_URL"

# start_floor NAME [ARG...]: durable_floor serve over a fresh file with the
# extra ARGs; sets FLOOR_PID and FLOOR_URL once it answers.
start_floor() {
  local name="$1" i
  shift
  mkdir -p "$WORK/$name"
  FAILURE_LOGS+=("$WORK/$name/stdout.log")
  "$FLOOR" serve --log "$WORK/$name/records" --threads "$SERVER_WORKERS" --port-file "$WORK/$name/port" "$@" \
    >"$WORK/$name/stdout.log" 2>&1 &
  FLOOR_PID=$!
  OTHER_PIDS+=("$FLOOR_PID")
  for (( i = 0; i < STARTUP_TIMEOUT * 10; i++ )); do
    [[ -s "$WORK/$name/port" ]] && break
    kill -0 "$FLOOR_PID" 2>/dev/null || die "$name exited during startup"
    sleep 0.1
  done
  [[ -s "$WORK/$name/port" ]] || die "$name wrote no port within ${STARTUP_TIMEOUT}s"
  FLOOR_URL="http://$HOST:$(tr -d '[:space:]' <"$WORK/$name/port")/v1/gateway/check"
  check_keepalive "$name" "$FLOOR_URL"
}

start_floor floor-leader --design leader
LEADER_PID="$FLOOR_PID"
LEADER_URL="$FLOOR_URL"
start_floor floor-syncer --design syncer
SYNCER_PID="$FLOOR_PID"
SYNCER_URL="$FLOOR_URL"
start_gateway_server sync
gateway_lua "$WORK/full.lua" "$TOKEN" 0

# ---- full load, in turns ----------------------------------------------------------
SUMMARY=()
for (( round = 1; round <= ROUNDS; round++ )); do
  run_wrk nginx "$NGINX_URL" "$WORK/nginx-$round.txt" "$WORK/full.lua"
  run_wrk "floor(leader)" "$LEADER_URL" "$WORK/leader-$round.txt" "$WORK/full.lua"
  run_wrk "floor(syncer)" "$SYNCER_URL" "$WORK/syncer-$round.txt" "$WORK/full.lua"
  run_wrk "geoledgerd(sync)" "$GL_URL" "$WORK/gl-$round.txt" "$WORK/full.lua"
  SUMMARY+=("$(awk -v k="$round" -v n="$(rps "$WORK/nginx-$round.txt")" -v l="$(rps "$WORK/leader-$round.txt")" \
    -v s="$(rps "$WORK/syncer-$round.txt")" -v g="$(rps "$WORK/gl-$round.txt")" 'BEGIN {
    f = l > s ? l : s
    printf "round %d: nginx %.0f req/s; floor %.0f (leader) / %.0f (syncer), best %.2f of nginx; geoledgerd(sync) %.0f (%.2f of nginx, %.2f of the best floor)",
      k, n, l, s, f / n, g, g / n, g / f }')")
done
MEANS="$(for (( round = 1; round <= ROUNDS; round++ )); do
  echo "$(rps "$WORK/nginx-$round.txt") $(rps "$WORK/leader-$round.txt") $(rps "$WORK/syncer-$round.txt") $(rps "$WORK/gl-$round.txt")"
done | awk '{ n += $1; l += $2; s += $3; g += $4 } END { printf "%.0f %.0f %.0f %.0f", n / NR, l / NR, s / NR, g / NR }')"
read -r NGINX_MEAN LEADER_MEAN SYNCER_MEAN GL_MEAN <<<"$MEANS"
if awk -v l="$LEADER_MEAN" -v s="$SYNCER_MEAN" 'BEGIN { exit !(l >= s) }'; then
  BEST=leader FLOOR_MEAN="$LEADER_MEAN"
else
  BEST=syncer FLOOR_MEAN="$SYNCER_MEAN"
fi
SUMMARY+=("$(awk -v n="$NGINX_MEAN" -v l="$LEADER_MEAN" -v s="$SYNCER_MEAN" -v f="$FLOOR_MEAN" -v g="$GL_MEAN" -v r="$ROUNDS" 'BEGIN {
  printf "mean of %d: floor(leader)/nginx = %.2f, floor(syncer)/nginx = %.2f, geoledgerd(sync)/nginx = %.2f, geoledgerd(sync)/best floor = %.2f",
    r, l / n, s / n, g / n, g / f }')")
SUMMARY+=("full   floor($BEST): $(pctl "$WORK/$BEST-$ROUNDS.txt"); geoledgerd(sync): $(pctl "$WORK/gl-$ROUNDS.txt") (last round)")

# ---- the floor without the disk ------------------------------------------------------
start_floor floor-nosync --no-sync
run_wrk "floor --no-sync" "$FLOOR_URL" "$WORK/floor-nosync.txt" "$WORK/full.lua"
SUMMARY+=("$(awk -v f="$(rps "$WORK/floor-nosync.txt")" -v n="$NGINX_MEAN" 'BEGIN {
  printf "floor(leader) without fdatasync: %.0f req/s (%.2f of nginx'"'"'s mean)", f, f / n }')")
stop_pid floor-nosync "$FLOOR_PID"

# ---- the same open-loop load on all four ----------------------------------------------
if [[ -x "$OPEN_LOOP" ]]; then
  TARGET="$(awk -v f="$FLOOR_MEAN" -v h="$HALF_FRACTION" 'BEGIN { printf "%.0f", f * h }')"
  run_open_loop "floor(leader)" "${LEADER_URL#http://}" /v1/gateway/check "$TARGET" "$WORK/open-leader.txt"
  run_open_loop "floor(syncer)" "${SYNCER_URL#http://}" /v1/gateway/check "$TARGET" "$WORK/open-syncer.txt"
  run_open_loop nginx "${NGINX_BASE#http://}" /v1/gateway/check "$TARGET" "$WORK/open-nginx.txt"
  gateway_buckets "http://$GL_ADDR" >"$WORK/buckets-before.txt"
  run_open_loop "geoledgerd(sync)" "$GL_ADDR" /v1/gateway/check "$TARGET" "$WORK/open-gl.txt"
  gateway_buckets "http://$GL_ADDR" >"$WORK/buckets-after.txt"
  SUMMARY+=("open   at $TARGET req/s ($HALF_FRACTION of floor($BEST)'s mean): floor(leader) $(pctl "$WORK/open-leader.txt" | sed 's/ p99.9.*//')")
  SUMMARY+=("open   at $TARGET req/s: floor(syncer) $(pctl "$WORK/open-syncer.txt" | sed 's/ p99.9.*//')")
  SUMMARY+=("open   at $TARGET req/s: nginx $(pctl "$WORK/open-nginx.txt" | sed 's/ p99.9.*//')")
  SUMMARY+=("open   at $TARGET req/s: geoledgerd(sync) $(pctl "$WORK/open-gl.txt" | sed 's/ p99.9.*//')")
  SUMMARY+=("server geoledgerd(sync) open-loop: $(server_latency "$WORK/buckets-before.txt" "$WORK/buckets-after.txt")")
else
  SUMMARY+=("open   skipped: no open_loop at $OPEN_LOOP (cmake --build build --target open_loop)")
fi

stop_pid floor-leader "$LEADER_PID"
stop_pid floor-syncer "$SYNCER_PID"
SUMMARY+=("$(cat "$WORK/floor-leader/stdout.log")")
SUMMARY+=("$(cat "$WORK/floor-syncer/stdout.log")")
SUMMARY+=("$(cat "$WORK/fsync.txt") (before any load)")
echo "==== summary"
printf '%s\n' "${SUMMARY[@]}"
