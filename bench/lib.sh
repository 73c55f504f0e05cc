#!/usr/bin/env bash
# Helpers shared by the benchmark scripts (sourced, not run).

die() { echo "bench: error: $*" >&2; exit 1; }

note() { echo "bench: $*" >&2; }

# Dies unless every named command is on PATH.
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found in PATH"
  done
}

# Prints DIR's file-system type; dies when it is tmpfs/ramfs (fsync-bound
# figures need a real disk). Use as FSTYPE="$(require_real_disk "$DIR")".
require_real_disk() {
  local fs
  fs="$(stat -f -c %T "$1")"
  [[ "$fs" != tmpfs && "$fs" != ramfs ]] || die "BENCH_TMPDIR=$1 is $fs; durable writes need a real disk"
  echo "$fs"
}

# build_targets REPO BUILD_DIR TARGET...: configures a Release build (tests
# off) in BUILD_DIR once, then builds the targets.
build_targets() {
  local repo="$1" dir="$2"
  shift 2
  if [[ ! -f "$dir/build.ninja" ]]; then
    nice cmake -S "$repo" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGEOLEDGER_BUILD_TESTS=OFF >/dev/null
  fi
  nice ninja -C "$dir" "$@" >/dev/null
}

# Seconds in a wrk-style duration (10s, 2m, 1h, or a bare number of seconds).
to_seconds() {
  local d="$1"
  [[ "$d" =~ ^[0-9]+[smh]?$ ]] || die "bad duration '$d' (use e.g. 10s, 2m)"
  case "$d" in
    *s) echo "${d%s}";;
    *m) echo $(( ${d%m} * 60 ));;
    *h) echo $(( ${d%h} * 3600 ));;
    *)  echo "$d";;
  esac
}

stop_pid() {  # stop_pid NAME PID: SIGTERM, wait up to STOP_TIMEOUT (15) s, then SIGKILL
  local name="$1" pid="$2" limit="${STOP_TIMEOUT:-15}" i
  [[ -n "$pid" ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for (( i = 0; i < limit * 10; i++ )); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  note "$name (pid $pid) ignored SIGTERM for $limit s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# ---- processes a benchmark starts ----------------------------------------------
# A script keeps what it starts in GL_PID, NGINX_PID, WRK_PID and (any other
# server) OTHER_PIDS, and its scratch directory in WORK, then calls
# install_cleanup. On exit (or INT/TERM) every one of them still running is
# stopped, the last lines of each file in FAILURE_LOGS are shown if the
# script failed, and WORK is removed.
GL_PID=""
NGINX_PID=""
WRK_PID=""
OTHER_PIDS=()
FAILURE_LOGS=()

bench_cleanup() {
  local rc=$? f
  trap - EXIT INT TERM
  stop_pid wrk "$WRK_PID"
  stop_pid geoledgerd "$GL_PID"
  stop_pid nginx "$NGINX_PID"
  for f in "${OTHER_PIDS[@]}"; do stop_pid server "$f"; done
  if (( rc != 0 && rc != 130 && rc != 143 )); then
    for f in "${FAILURE_LOGS[@]}"; do
      [[ -s "$f" ]] && { echo "---- $f (last 20 lines) ----" >&2; tail -n 20 "$f" >&2; }
    done
  fi
  if [[ -n "${WORK:-}" ]]; then rm -rf "$WORK"; fi
  exit "$rc"
}

install_cleanup() {
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# start_geoledgerd DATA_DIR LOG [ARG...]: starts $GEOLEDGERD --dev on
# $HOST:0 over DATA_DIR with the extra ARGs, waits up to STARTUP_TIMEOUT
# seconds for its listen.addr and admin.token, and sets GL_PID and GL_ADDR
# (host:port). LOG joins FAILURE_LOGS.
start_geoledgerd() {
  local data="$1" log="$2" i
  shift 2
  FAILURE_LOGS+=("$log")
  rm -f "$data/listen.addr"  # a reused data dir keeps the previous run's
  "$GEOLEDGERD" --data-dir "$data" --listen "$HOST:0" --dev "$@" >"$log" 2>&1 &
  GL_PID=$!
  for (( i = 0; ; i++ )); do
    [[ -s "$data/listen.addr" && -s "$data/admin.token" ]] && break
    kill -0 "$GL_PID" 2>/dev/null || die "geoledgerd exited during startup"
    if (( i >= STARTUP_TIMEOUT * 10 )); then
      [[ -s "$data/listen.addr" ]] || die "geoledgerd wrote no $data/listen.addr within ${STARTUP_TIMEOUT}s"
      die "no $data/admin.token within ${STARTUP_TIMEOUT}s (a data dir whose token store was created elsewhere has none)"
    fi
    sleep 0.1
  done
  GL_ADDR="$(tr -d '[:space:]' <"$data/listen.addr")"
  [[ "$GL_ADDR" == "$HOST":* ]] || die "geoledgerd listens on '$GL_ADDR', expected $HOST:PORT"
}

# start_nginx_fixed200 DIR WORKERS: nginx (binary $NGINX) with its prefix in
# DIR on a free $HOST port, WORKERS worker processes, no access log,
# persistent connections, answering every request with a fixed 200 "ok";
# sets NGINX_PID and NGINX_BASE (http://host:port) once it answers.
start_nginx_fixed200() {
  local dir="$1" workers="$2" port
  port="$(free_port)"
  write_nginx_conf "$dir" "$workers" <<EOF
  server {
    listen $HOST:$port;
    location / { default_type text/plain; return 200 "ok\n"; }
  }
EOF
  start_nginx "$dir"
  NGINX_BASE="http://$HOST:$port"
  wait_http nginx "$NGINX_PID" "$NGINX_BASE/"
}

# write_nginx_conf DIR WORKERS: writes DIR/nginx.conf for a benchmark's nginx
# with WORKERS worker processes: no access log, persistent client
# connections, temp paths under DIR, and the http block's contents (its
# upstreams and servers) read from stdin.
write_nginx_conf() {
  local dir="$1" workers="$2"
  mkdir -p "$dir/logs" "$dir/tmp"
  {
    cat <<EOF
daemon off;
master_process on;
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  client_body_temp_path $dir/tmp/client_body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
EOF
    cat
    echo "}"
  } >"$dir/nginx.conf"
}

# start_nginx DIR: starts $NGINX on DIR/nginx.conf in the background; sets NGINX_PID.
start_nginx() {
  local dir="$1"
  FAILURE_LOGS+=("$dir/error.log" "$dir/stderr.log")
  # -e: error log before the config is read (the default path may be unwritable).
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/stderr.log" 2>&1 &
  NGINX_PID=$!
}

# A currently free loopback TCP port (the kernel picks it; nginx binds it right after).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_http NAME PID URL: poll URL until it answers 200, bounded by STARTUP_TIMEOUT.
wait_http() {
  local name="$1" pid="$2" url="$3" i
  for (( i = 0; i < STARTUP_TIMEOUT * 10; i++ )); do
    kill -0 "$pid" 2>/dev/null || die "$name exited during startup"
    curl -sf --max-time 1 -o /dev/null "$url" && return 0
    sleep 0.1
  done
  die "$name did not answer $url within ${STARTUP_TIMEOUT}s"
}

# Two requests over one connection, no Connection header: the second must reuse it.
check_keepalive() {
  local name="$1" url="$2" trace
  trace="$(curl -sv --max-time 5 -o /dev/null -o /dev/null "$url" "$url" 2>&1)" || die "$name: keep-alive probe failed"
  if grep -qi '^< connection: close' <<<"$trace" || ! grep -q 'Re-using existing connection' <<<"$trace"; then
    echo "$trace" >&2
    die "$name closes connections on HTTP/1.1 requests without a Connection header; the numbers would measure connection setup"
  fi
}

# wrk runs in the background and is waited for, so a signal to this script
# ends the run at once (bash defers traps until a foreground command returns).
wrk_bounded() {  # wrk_bounded LIMIT_SECONDS OUTFILE WRK_ARGS...
  local limit="$1" out="$2"
  shift 2
  timeout "$limit" wrk "$@" >"$out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { local rc=$?; WRK_PID=""; cat "$out" >&2; return "$rc"; }
  WRK_PID=""
}

rps() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }

auth_header() { printf 'Authorization: Bearer %s' "$(tr -d '[:space:]' <"$1")"; }

create_token() {  # create_token NAME SCOPE OUTFILE
  local body
  body="$(curl -sf --max-time 10 -H @<(auth_header "$DATA/admin.token") -H 'Content-Type: application/json' \
    -d "{\"name\":\"$1\",\"scopes\":[\"$2\"]}" "$BASE/v1/admin/tokens")" || die "creating the $2 token failed"
  python3 -c 'import json, sys; print(json.loads(sys.argv[1])["token"])' "$body" >"$3"
}

ledger_size() {
  curl -sf --max-time 10 -H @<(auth_header "$WORK/read.token") "$BASE/v1/audit/entries?start=0&end=0" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["size"])'
}

# ---- the gateway benchmarks' policy ---------------------------------------------
# load_gateway_policy BASE ADMIN_TOKEN_FILE: three regions and tenant "acme"
# (home eu-west-1, personal data allowed in eu-west-1 and eu-central-1), so
# that gateway_lua's check is an allow.
load_gateway_policy() {
  local base="$1" token_file="$2" path body
  while read -r path body; do
    curl -sf --max-time 10 -X PUT -H @<(auth_header "$token_file") -H 'Content-Type: application/json' \
      --data "$body" "$base$path" >/dev/null || die "geoledgerd setup call PUT $path failed"
  done <<'EOF'
/v1/regions/eu-west-1 {"country":"IE","name":"Ireland"}
/v1/regions/eu-central-1 {"country":"DE","name":"Frankfurt"}
/v1/regions/us-east-1 {"country":"US","name":"Virginia"}
/v1/tenants/acme {"home_region":"eu-west-1","status":"active","allowed_regions":{"personal":["eu-west-1","eu-central-1"]}}
EOF
}

# start_gateway_server MODE: geoledgerd with --decision-audit MODE for the
# gateway benchmarks (fresh data dir $WORK/geoledgerd-MODE, SERVER_WORKERS
# threads, no access log, rate limits off), the policy above and a
# decide-scoped token in $WORK/decide-MODE.token; checks that one gateway
# check is allowed. Sets GL_PID, GL_ADDR, GL_URL (the check's URL) and TOKEN.
start_gateway_server() {
  local mode="$1" data="$WORK/geoledgerd-$1"
  start_geoledgerd "$data" "$WORK/geoledgerd-$mode.log" --region eu-west-1 \
    --threads "$SERVER_WORKERS" --access-log false --log-level warn \
    --rate-limit-tenant-rps 0 --rate-limit-token-rps 0 --decision-audit "$mode"
  wait_http geoledgerd "$GL_PID" "http://$GL_ADDR/healthz"
  load_gateway_policy "http://$GL_ADDR" "$data/admin.token"
  DATA="$data" BASE="http://$GL_ADDR" create_token bench-gateway decide "$WORK/decide-$mode.token"
  TOKEN="$(tr -d '[:space:]' <"$WORK/decide-$mode.token")"
  GL_URL="http://$GL_ADDR/v1/gateway/check"
  curl -sf --max-time 5 -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'X-Tenant-Id: acme' \
    -H 'X-Data-Category: personal' -H 'X-Operation: read' -H 'X-Target-Region: eu-west-1' "$GL_URL" ||
    die "gateway check probe was not allowed"
}

# gateway_buckets BASE: the gateway check's latency histogram from geoledgerd's
# /metrics at BASE, one "le cumulative-count" line per bucket (+Inf last).
gateway_buckets() {
  curl -sf --max-time 5 "$1/metrics" | awk '
    index($0, "geoledger_http_request_duration_seconds_bucket{route=\"/v1/gateway/check\",") == 1 {
      match($0, /le="[^"]+"/); print substr($0, RSTART + 4, RLENGTH - 5), $NF }'
}

# server_latency BEFORE AFTER: for the checks between two gateway_buckets
# snapshots, the buckets holding their p50 and p99 and the share answered
# within 1 ms, as geoledgerd measures them (from a parsed request to its
# answer handed to the socket: no network, no load generator).
server_latency() {
  paste -d' ' "$1" "$2" | awk '
    { le[NR] = $1; n[NR] = $4 - $2 }
    END {
      total = n[NR]
      if (total <= 0) { print "no checks counted"; exit }
      for (i = 1; i <= NR; i++) {
        if (p50 == "" && n[i] >= 0.5 * total) p50 = le[i]
        if (p99 == "" && n[i] >= 0.99 * total) p99 = le[i]
        if (le[i] == "0.001") ms = n[i]
      }
      printf "p50 <= %s, p99 <= %s, %.2f%% within 1 ms (%d checks; bucket bounds, in-process)\n",
        (p50 == "+Inf" ? p50 : (p50 * 1000) " ms"), (p99 == "+Inf" ? p99 : (p99 * 1000) " ms"), 100 * ms / total, total
    }'
}

# gateway_lua FILE TOKEN PACE_MS: a wrk Lua script making one allowed gateway
# check (acme, personal, read, eu-west-1) with TOKEN; with PACE_MS > 0 each
# connection waits a random whole number of milliseconds averaging PACE_MS
# between requests. done() prints "pctl p50=..us p90=.. p99=.. p99.9=.. max=..".
gateway_lua() {
  cat >"$1" <<EOF
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer $2"
wrk.headers["X-Tenant-Id"] = "acme"
wrk.headers["X-Data-Category"] = "personal"
wrk.headers["X-Operation"] = "read"
wrk.headers["X-Target-Region"] = "eu-west-1"
local pace = $3
local counter = 0
function setup(thread) counter = counter + 1; thread:set("seed", counter) end
function init(args) math.randomseed(os.time() * 1000 + (seed or 0)) end
if pace > 0 then
  -- wrk's delay() takes whole milliseconds: round randomly to keep the mean.
  function delay()
    local base = math.floor(pace)
    if math.random() < pace - base then return base + 1 end
    return base
  end
end
function done(summary, latency, requests)
  io.write(string.format("pctl p50=%.0fus p90=%.0fus p99=%.0fus p99.9=%.0fus max=%.0fus\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
EOF
}

# ---- wrk against nginx: the settings and the runs ---------------------------------
# wrk_vs_nginx_setup: the settings the wrk-against-nginx benchmarks share (each
# script's Environment header lists them) with their defaults and checks; makes
# WORK and installs the cleanup; sets DURATION_S, WARMUP_S, WRK_ARGS and WRK_LIMIT.
wrk_vs_nginx_setup() {
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
  WRK_ARGS=(-t"$WRK_THREADS" -c"$WRK_CONNECTIONS" --latency)
  WRK_LIMIT=$(( DURATION_S + 30 ))
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/geoledger-bench.XXXXXX")"
  install_cleanup
}

# run_wrk NAME URL OUTFILE [LUA]: an untimed warm-up of WARMUP_S (its output in
# $WORK/warmup.txt), then the measured run of DURATION with WRK_ARGS (and the
# Lua script, if given); prints wrk's report and warns if it saw errors.
run_wrk() {
  local name="$1" url="$2" out="$3" script=()
  [[ -n "${4:-}" ]] && script=(-s "$4")
  if (( WARMUP_S > 0 )); then
    wrk_bounded "$(( WARMUP_S + 30 ))" "$WORK/warmup.txt" "${WRK_ARGS[@]}" "${script[@]}" -d"${WARMUP_S}s" "$url" \
      || die "wrk warm-up against $name failed"
  fi
  echo "==== $name: wrk ${WRK_ARGS[*]}${4:+ -s $(basename "$4")} -d$DURATION $url"
  wrk_bounded "$WRK_LIMIT" "$out" "${WRK_ARGS[@]}" "${script[@]}" -d"$DURATION" "$url" || die "wrk against $name failed"
  cat "$out"
  grep -q '^Requests/sec:' "$out" || die "no Requests/sec in wrk output for $name"
  if grep -Eq '^ *(Non-2xx or 3xx responses|Socket errors):' "$out"; then
    note "WARNING: $name had errors or non-2xx responses (see above); its rate is not comparable"
  fi
  echo
}

# run_open_loop NAME HOST:PORT PATH RATE OUTFILE: open_loop at RATE req/s with
# the gateway check's headers (nginx ignores them), DURATION after WARMUP, on
# WRK_CONNECTIONS connections, with $OPEN_LOOP and the bearer token $TOKEN;
# prints its report.
run_open_loop() {
  echo "==== $1 open-loop: $(basename "$OPEN_LOOP") --rate $4 --connections $WRK_CONNECTIONS --duration $DURATION_S"
  timeout "$(( WARMUP_S + DURATION_S + 30 ))" "$OPEN_LOOP" --target "$2" --path "$3" --rate "$4" \
    --connections "$WRK_CONNECTIONS" --duration "$DURATION_S" --warmup "$WARMUP_S" \
    --header "Authorization: Bearer $TOKEN" --header 'X-Tenant-Id: acme' --header 'X-Data-Category: personal' \
    --header 'X-Operation: read' --header 'X-Target-Region: eu-west-1' >"$5" \
    || note "WARNING: open_loop against $1 reported failed, non-2xx or unanswered requests (see below)"
  cat "$5"
  grep -q '^pctl ' "$5" || die "no percentiles from open_loop against $1"
  echo
}

# pctl FILE: the percentiles gateway_lua's done() printed.
pctl() { grep '^pctl' "$1" | sed 's/^pctl //'; }
