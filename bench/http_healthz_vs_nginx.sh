#!/usr/bin/env bash
# HTTP baseline: geoledgerd GET /healthz against nginx returning a fixed 200.
#
# One invocation starts both servers on loopback, loads each in turn with the
# same wrk settings over persistent connections (no Connection header is
# added: HTTP/1.1 keep-alive is the default, as with gateways), prints both
# wrk reports and a final line
#   ratio geoledgerd/nginx = R (geoledgerd N req/s, nginx M req/s)
# and stops everything it started. It builds nothing. With PIPELINE=N > 1
# each connection sends N requests at once and waits for their N answers
# (HTTP/1.1 pipelining).
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
#   PIPELINE          requests each connection sends at once [1]
#
# Requires: wrk, curl, python3 (free-port helper), nginx (Debian nginx-light is enough).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

wrk_vs_nginx_setup
PIPELINE="${PIPELINE:-1}"
[[ "$PIPELINE" =~ ^[1-9][0-9]*$ ]] || die "PIPELINE must be a positive integer"

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
CORES="$(nproc)"
echo "geoledgerd: $GEOLEDGERD (pid $GL_PID, --threads $SERVER_WORKERS, access log off, log level warn) at $GL_URL"
echo "nginx:      $NGINX (pid $NGINX_PID, worker_processes $SERVER_WORKERS, access_log off) at $NGINX_URL"
echo "machine:    $CORES cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); nothing is pinned:"
echo "            the server under test and wrk (-t$WRK_THREADS) share all $CORES cores; the other server sits idle."
echo "warm-up:    ${WARMUP_S}s untimed wrk run before each measurement"
echo

LUA=""
if (( PIPELINE > 1 )); then
  # wrk's own pipelining idiom: one write of N requests, then N answers.
  LUA="$WORK/pipeline.lua"
  cat >"$LUA" <<EOF
init = function(args)
  local r = {}
  for i = 1, $PIPELINE do r[i] = wrk.format() end
  batch = table.concat(r)
end
request = function() return batch end
EOF
  echo "pipelining: $PIPELINE requests per write"
fi
run_wrk geoledgerd "$GL_URL" "$WORK/wrk-geoledgerd.txt" "$LUA"
run_wrk nginx "$NGINX_URL" "$WORK/wrk-nginx.txt" "$LUA"

GL_RPS="$(rps "$WORK/wrk-geoledgerd.txt")"
NGINX_RPS="$(rps "$WORK/wrk-nginx.txt")"
awk -v g="$GL_RPS" -v n="$NGINX_RPS" 'BEGIN {
  if (n <= 0) { print "ratio geoledgerd/nginx = n/a (nginx rate is zero)"; exit 1 }
  printf "ratio geoledgerd/nginx = %.2f (geoledgerd %.0f req/s, nginx %.0f req/s)\n", g / n, g, n
}'
