#!/usr/bin/env bash
# What a residency check costs a gateway: wrk against nginx proxying to an
# application (a fixed 200 served by the same nginx), once without a check
# and once with `auth_request` asking geoledgerd GET /v1/gateway/check first,
# configured as README "Behind nginx" says (an upstream pool with keepalive).
#
# One invocation starts geoledgerd for each audit mode in MODES (fresh data
# dir each, the benchmark policy, a decide-scoped token) and one nginx with
# three servers on loopback:
#   plain   proxy_pass to the application, no check;
#   noop    auth_request to a check that always allows (a fixed 204 in the
#           same nginx, through a kept pool): what any check service costs
#           this gateway at the least;
#   gated   auth_request to geoledgerd through an `upstream` block with
#           `keepalive`, then proxy_pass to the application;
#   nopool  the same check with `proxy_pass` straight to geoledgerd's address,
#           which keeps no connection (measured for the first mode only,
#           unless NOPOOL=0).
# The plain server is loaded before the first gated run and again after each
# one, and each gated run is compared with the mean of the plain runs just
# before and just after it. The noop server is measured once, after the
# first plain run. For every gated run it also prints how many
# connections geoledgerd accepted per 1,000 checks (its
# geoledger_http_connections_accepted_total), which shows whether nginx kept
# them. Every check is an allow (acme, personal, read, eu-west-1), so every
# request writes one audit entry. Rate limits are off. It stops everything it
# started and builds nothing.
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
#   MODES             audit modes to measure [sync async]
#   NOPOOL            1: also measure the nopool server for the first mode [1]
#
# Requires: wrk, curl, python3 (free-port helper), nginx (Debian nginx-light is enough).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

wrk_vs_nginx_setup
MODES="${MODES:-sync async}"
NOPOOL="${NOPOOL:-1}"

APP_PORT="$(free_port)"
PLAIN_PORT="$(free_port)"
GATED_PORT="$(free_port)"
NOPOOL_PORT="$(free_port)"
NOOP_PORT="$(free_port)"

# write_gateway_conf DIR TOKEN: DIR/nginx.conf, for geoledgerd at $GL_ADDR.
write_gateway_conf() {
  local dir="$1" token="$2"
  # The check's location, with proxy_pass target $1.
  check_location() {
    cat <<EOF
    location = /_residency {
      internal;
      proxy_pass $1;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Authorization "Bearer $token";
      proxy_set_header X-Tenant-Id \$http_x_tenant_id;
      proxy_set_header X-Data-Category \$http_x_data_category;
      proxy_set_header X-Operation \$http_x_operation;
      proxy_set_header X-Target-Region \$http_x_target_region;
    }
EOF
  }
  local to_app='proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";'
  write_nginx_conf "$dir" "$SERVER_WORKERS" <<EOF
  upstream app { server $HOST:$APP_PORT; keepalive 256; keepalive_requests 1000000; }
  upstream geoledger { server $GL_ADDR; keepalive 256; keepalive_requests 1000000; }
  server {  # the application
    listen $HOST:$APP_PORT;
    location / { default_type text/plain; return 200 "ok\n"; }
    # The noop check: no body, or nginx would not keep the connection (README).
    location = /allow { return 204; }
  }
  server {  # plain: no residency check
    listen $HOST:$PLAIN_PORT;
    location / { $to_app }
  }
  server {  # noop: a check that always allows, through a kept pool
    listen $HOST:$NOOP_PORT;
$(check_location "http://app/allow")
    location / { auth_request /_residency; $to_app }
  }
  server {  # gated: the check through a kept pool
    listen $HOST:$GATED_PORT;
$(check_location "http://geoledger/v1/gateway/check")
    location / { auth_request /_residency; $to_app }
  }
  server {  # nopool: the check straight to the address
    listen $HOST:$NOPOOL_PORT;
$(check_location "http://$GL_ADDR/v1/gateway/check")
    location / { auth_request /_residency; $to_app }
  }
EOF
}

start_gateway() {  # start_gateway MODE: geoledgerd in MODE, then nginx in front of it
  local mode="$1" dir="$WORK/nginx-$1"
  start_gateway_server "$mode"
  write_gateway_conf "$dir" "$TOKEN"
  start_nginx "$dir"
  wait_http nginx "$NGINX_PID" "http://$HOST:$PLAIN_PORT/"
  # One request through each gated server by hand: it must be allowed.
  local port
  for port in "$GATED_PORT" "$NOPOOL_PORT"; do
    curl -sf --max-time 5 -o /dev/null -H 'X-Tenant-Id: acme' -H 'X-Data-Category: personal' \
      -H 'X-Operation: read' -H 'X-Target-Region: eu-west-1' "http://$HOST:$port/orders/1" ||
      die "a request through the gated server on port $port was not allowed"
  done
  # And a denied one never reaches the application.
  local code
  code="$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H 'X-Tenant-Id: acme' -H 'X-Data-Category: personal' \
    -H 'X-Operation: read' -H 'X-Target-Region: us-east-1' "http://$HOST:$GATED_PORT/orders/1")"
  [[ "$code" == 403 ]] || die "a request to a region outside the policy got $code through the gated server, not 403"
}

stop_gateway() {
  stop_pid nginx "$NGINX_PID"
  NGINX_PID=""
  stop_pid geoledgerd "$GL_PID"
  GL_PID=""
}

accepted() {
  curl -sf --max-time 5 "http://$GL_ADDR/metrics" | awk '$1 == "geoledger_http_connections_accepted_total" { print $2 }'
}

gateway_lua "$WORK/client.lua" "unused-by-nginx" 0  # the four X- headers; nginx sets its own token

requests() { awk '/requests in/ { n += $1 } END { print n }' "$@"; }

echo "geoledgerd: $GEOLEDGERD (--threads $SERVER_WORKERS, access log off, log level warn, rate limits off)"
echo "nginx:      $NGINX (worker_processes $SERVER_WORKERS, access_log off); the application is a fixed 200 in the same nginx"
echo "machine:    $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); nothing is pinned:"
echo "            nginx, geoledgerd and wrk (-t$WRK_THREADS) share all of them."
echo "data dir:   $WORK (filesystem $(df -T "$WORK" | awk 'NR==2 { print $2 }'))"
echo

SUMMARY=()
PLAIN_RPS=""
first=1
for mode in $MODES; do
  start_gateway "$mode"
  if [[ -z "$PLAIN_RPS" ]]; then
    run_wrk "plain" "http://$HOST:$PLAIN_PORT/orders/1" "$WORK/wrk-plain-first.txt" "$WORK/client.lua"
    PLAIN_RPS="$(rps "$WORK/wrk-plain-first.txt")"
    SUMMARY+=("plain (no check): $(printf '%.0f' "$PLAIN_RPS") req/s, $(pctl "$WORK/wrk-plain-first.txt")")
    run_wrk "noop" "http://$HOST:$NOOP_PORT/orders/1" "$WORK/wrk-noop.txt" "$WORK/client.lua"
    NOOP_RPS="$(rps "$WORK/wrk-noop.txt")"
    SUMMARY+=("$(awk -v n="$NOOP_RPS" -v p="$PLAIN_RPS" 'BEGIN { printf "ratio noop/plain = %.2f (%.0f req/s)", n / p, n }'), $(pctl "$WORK/wrk-noop.txt")")
  fi
  servers=("gated:$GATED_PORT")
  (( first && NOPOOL )) && servers+=("nopool:$NOPOOL_PORT")
  for s in "${servers[@]}"; do
    name="${s%%:*}" port="${s##*:}"
    before="$(accepted)"
    rm -f "$WORK/warmup.txt"
    run_wrk "$name($mode)" "http://$HOST:$port/orders/1" "$WORK/wrk-$name-$mode.txt" "$WORK/client.lua"
    after="$(accepted)"
    checks="$(requests "$WORK/wrk-$name-$mode.txt" $([[ -s "$WORK/warmup.txt" ]] && echo "$WORK/warmup.txt"))"
    run_wrk "plain" "http://$HOST:$PLAIN_PORT/orders/1" "$WORK/wrk-plain-after-$name-$mode.txt" "$WORK/client.lua"
    PLAIN_AFTER="$(rps "$WORK/wrk-plain-after-$name-$mode.txt")"
    SUMMARY+=("$(awk -v g="$(rps "$WORK/wrk-$name-$mode.txt")" -v b="$PLAIN_RPS" -v a="$PLAIN_AFTER" -v n="$name" -v m="$mode" -v o="$NOOP_RPS" 'BEGIN {
      p = (b + a) / 2
      printf "ratio %s(%s)/plain = %.2f, /noop = %.2f (%.0f req/s, plain %.0f req/s: %.0f before, %.0f after)", n, m, g / p, g / o, g, p, b, a }')")
    SUMMARY+=("       $name($mode): $(pctl "$WORK/wrk-$name-$mode.txt"); geoledgerd accepted $(awk -v d="$(( after - before - 1 ))" -v c="$checks" 'BEGIN {
      printf "%.1f connections per 1,000 checks", d * 1000 / c }')")
    PLAIN_RPS="$PLAIN_AFTER"
  done
  stop_gateway
  first=0
done

echo "==== summary"
printf '%s\n' "${SUMMARY[@]}"
