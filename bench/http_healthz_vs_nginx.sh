#!/usr/bin/env bash
# HTTP baseline: geoledgerd GET /healthz against nginx returning a fixed 200.
#
# One invocation starts both servers on loopback, loads each in turn with the
# same wrk settings over persistent connections (no Connection header is
# added: HTTP/1.1 keep-alive is the default, as with gateways), prints both
# wrk reports and a final line
#   ratio geoledgerd/nginx = R (geoledgerd N req/s, nginx M req/s)
# and stops everything it started. It builds nothing.
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
#
# Requires: wrk, curl, python3 (free-port helper), nginx (Debian nginx-light is enough).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GEOLEDGERD="${GEOLEDGERD:-$REPO_ROOT/build/server/geoledgerd}"
NGINX="${NGINX:-/usr/sbin/nginx}"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
WRK_THREADS="${WRK_THREADS:-2}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-64}"
SERVER_WORKERS="${SERVER_WORKERS:-2}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-30}"
HOST=127.0.0.1  # loopback only

require_tools wrk curl python3
[[ -x "$GEOLEDGERD" ]] || die "geoledgerd not found or not executable at $GEOLEDGERD (build it first, or set GEOLEDGERD)"
[[ -x "$NGINX" ]] || die "nginx not found at $NGINX (apt-get install nginx-light, or set NGINX)"
DURATION_S="$(to_seconds "$DURATION")"
WARMUP_S="$(to_seconds "$WARMUP")"
(( DURATION_S > 0 )) || die "DURATION must be positive"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/geoledger-bench.XXXXXX")"
install_cleanup

# ---- geoledgerd -------------------------------------------------------------
start_geoledgerd "$WORK/geoledgerd-data" "$WORK/geoledgerd.log" --region eu-west-1 \
  --threads "$SERVER_WORKERS" --access-log false --log-level warn
GL_URL="http://$GL_ADDR/healthz"
wait_http geoledgerd "$GL_PID" "$GL_URL"
check_keepalive geoledgerd "$GL_URL"

# ---- nginx ------------------------------------------------------------------
start_nginx_fixed200 "$WORK/nginx" "$SERVER_WORKERS"
NGINX_URL="$NGINX_BASE/"
check_keepalive nginx "$NGINX_URL"

# ---- load -------------------------------------------------------------------
WRK_ARGS=(-t"$WRK_THREADS" -c"$WRK_CONNECTIONS" --latency)
WRK_LIMIT=$(( DURATION_S + 30 ))

run_wrk() {  # run_wrk NAME URL OUTFILE
  local name="$1" url="$2" out="$3"
  if (( WARMUP_S > 0 )); then
    wrk_bounded "$(( WARMUP_S + 30 ))" "$WORK/warmup.txt" "${WRK_ARGS[@]}" -d"${WARMUP_S}s" "$url" \
      || die "wrk warm-up against $name failed"
  fi
  echo "==== $name: wrk ${WRK_ARGS[*]} -d$DURATION $url"
  wrk_bounded "$WRK_LIMIT" "$out" "${WRK_ARGS[@]}" -d"$DURATION" "$url" || die "wrk against $name failed"
  cat "$out"
  grep -q '^Requests/sec:' "$out" || die "no Requests/sec in wrk output for $name"
  if grep -Eq '^ *(Non-2xx or 3xx responses|Socket errors):' "$out"; then
    note "WARNING: $name had errors or non-2xx responses (see above); its rate is not comparable"
  fi
  echo
}

CORES="$(nproc)"
echo "geoledgerd: $GEOLEDGERD (pid $GL_PID, --threads $SERVER_WORKERS, access log off, log level warn) at $GL_URL"
echo "nginx:      $NGINX (pid $NGINX_PID, worker_processes $SERVER_WORKERS, access_log off) at $NGINX_URL"
echo "machine:    $CORES cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); nothing is pinned:"
echo "            the server under test and wrk (-t$WRK_THREADS) share all $CORES cores; the other server sits idle."
echo "warm-up:    ${WARMUP_S}s untimed wrk run before each measurement"
echo

run_wrk geoledgerd "$GL_URL" "$WORK/wrk-geoledgerd.txt"
run_wrk nginx "$NGINX_URL" "$WORK/wrk-nginx.txt"

GL_RPS="$(rps "$WORK/wrk-geoledgerd.txt")"
NGINX_RPS="$(rps "$WORK/wrk-nginx.txt")"
awk -v g="$GL_RPS" -v n="$NGINX_RPS" 'BEGIN {
  if (n <= 0) { print "ratio geoledgerd/nginx = n/a (nginx rate is zero)"; exit 1 }
  printf "ratio geoledgerd/nginx = %.2f (geoledgerd %.0f req/s, nginx %.0f req/s)\n", g / n, g, n
}'
