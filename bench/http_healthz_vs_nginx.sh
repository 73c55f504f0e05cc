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
GL_PID=""
NGINX_PID=""
WRK_PID=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid wrk "$WRK_PID"
  stop_pid geoledgerd "$GL_PID"
  stop_pid nginx "$NGINX_PID"
  if (( rc != 0 && rc != 130 && rc != 143 )); then
    for f in "$WORK/geoledgerd.log" "$WORK/nginx/error.log" "$WORK/nginx/stderr.log"; do
      [[ -s "$f" ]] && { echo "---- $f (last 20 lines) ----" >&2; tail -n 20 "$f" >&2; }
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- geoledgerd -------------------------------------------------------------
GL_DATA="$WORK/geoledgerd-data"
"$GEOLEDGERD" --data-dir "$GL_DATA" --listen "$HOST:0" --region eu-west-1 --dev \
  --threads "$SERVER_WORKERS" --access-log false --log-level warn \
  >"$WORK/geoledgerd.log" 2>&1 &
GL_PID=$!
for (( i = 0; ; i++ )); do
  [[ -s "$GL_DATA/listen.addr" ]] && break
  kill -0 "$GL_PID" 2>/dev/null || die "geoledgerd exited during startup"
  (( i < STARTUP_TIMEOUT * 10 )) || die "geoledgerd wrote no $GL_DATA/listen.addr within ${STARTUP_TIMEOUT}s"
  sleep 0.1
done
GL_ADDR="$(tr -d '[:space:]' <"$GL_DATA/listen.addr")"
[[ "$GL_ADDR" == "$HOST":* ]] || die "geoledgerd listens on '$GL_ADDR', expected $HOST:PORT"
GL_URL="http://$GL_ADDR/healthz"
wait_http geoledgerd "$GL_PID" "$GL_URL"
check_keepalive geoledgerd "$GL_URL"

# ---- nginx ------------------------------------------------------------------
NGX="$WORK/nginx"
mkdir -p "$NGX/logs" "$NGX/tmp"
NGINX_PORT="$(free_port)"
cat >"$NGX/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $SERVER_WORKERS;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  client_body_temp_path $NGX/tmp/client_body;
  proxy_temp_path $NGX/tmp/proxy;
  fastcgi_temp_path $NGX/tmp/fastcgi;
  uwsgi_temp_path $NGX/tmp/uwsgi;
  scgi_temp_path $NGX/tmp/scgi;
  server {
    listen $HOST:$NGINX_PORT;
    location / { default_type text/plain; return 200 "ok\n"; }
  }
}
EOF
# -e: error log before the config is read (the default path may be unwritable).
"$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" >"$NGX/stderr.log" 2>&1 &
NGINX_PID=$!
NGINX_URL="http://$HOST:$NGINX_PORT/"
wait_http nginx "$NGINX_PID" "$NGINX_URL"
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
