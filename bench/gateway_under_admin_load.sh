#!/usr/bin/env bash
# The gateway hot path while other clients write: GET /v1/gateway/check at a
# fixed pace, first alone and then while ADMIN_CLIENTS clients write as fast
# as the service answers them (persistent connections, one request at a time
# each). ADMIN_LOAD says what they write:
#   tenants         PUT /v1/tenants/<new>: policy writes wait for the disk (a
#                   synced policy-store write and a durable audit entry); run
#                   on an HTTP thread, each would stall the gateway checks
#                   that thread serves;
#   audit-subjects  POST /v1/audit/events, AUDIT_BATCH events a request, each
#                   with `personal` details about a new subject: every event
#                   makes a subject data key while it is sealed (on the HTTP
#                   thread for a small request, on a bulk thread for one
#                   over 16 KiB).
#
# One invocation starts geoledgerd (--dev, fresh data dir, rate limits off),
# loads a small policy and a decide-scoped token, then runs the same paced wrk
# load twice and prints
#   alone        R req/s, p50/p90/p99/p99.9
#   admin load   R req/s, p50/p90/p99/p99.9, N PUT/s
#   ratio admin-load/alone: throughput X, p99 Y
# The peer of the second run is the first: same server, same pace.
#
# Environment (all optional):
#   GEOLEDGERD       geoledgerd binary                          [<repo>/build/server/geoledgerd]
#   DURATION         seconds per wrk run                        [8] (max 60)
#   PACE_MS          wait between requests per connection (ms)  [1.5]
#   WRK_CONNECTIONS  wrk -c                                     [64]
#   WRK_THREADS      wrk -t                                     [2]
#   ADMIN_CLIENTS    concurrent writing clients                 [4]
#   ADMIN_LOAD       tenants | audit-subjects                   [tenants]
#   AUDIT_BATCH      events per audit request                   [1000] (1-1000)
#   DECISION_AUDIT   --decision-audit                           [async]
#   SERVER_THREADS   geoledgerd --threads                       [2]
#   STARTUP_TIMEOUT  seconds to wait for geoledgerd             [30]
#
# Requires: wrk, curl, python3. It builds nothing, and stops what it starts.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GEOLEDGERD="${GEOLEDGERD:-$REPO_ROOT/build/server/geoledgerd}"
DURATION="${DURATION:-8}"
PACE_MS="${PACE_MS:-1.5}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-64}"
WRK_THREADS="${WRK_THREADS:-2}"
ADMIN_CLIENTS="${ADMIN_CLIENTS:-4}"
ADMIN_LOAD="${ADMIN_LOAD:-tenants}"
AUDIT_BATCH="${AUDIT_BATCH:-1000}"
DECISION_AUDIT="${DECISION_AUDIT:-async}"
SERVER_THREADS="${SERVER_THREADS:-2}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-30}"
HOST=127.0.0.1  # loopback only

require_tools wrk curl python3
[[ -x "$GEOLEDGERD" ]] || die "geoledgerd not found or not executable at $GEOLEDGERD (build it first, or set GEOLEDGERD)"
DURATION_S="$(to_seconds "$DURATION")"
(( DURATION_S > 0 && DURATION_S <= 60 )) || die "DURATION must be 1-60 seconds"
[[ "$ADMIN_CLIENTS" =~ ^[1-9][0-9]?$ ]] || die "ADMIN_CLIENTS must be 1-99"
[[ "$ADMIN_LOAD" == tenants || "$ADMIN_LOAD" == audit-subjects ]] || die "ADMIN_LOAD must be tenants or audit-subjects"
[[ "$AUDIT_BATCH" =~ ^[1-9][0-9]{0,3}$ ]] && (( AUDIT_BATCH <= 1000 )) || die "AUDIT_BATCH must be 1-1000"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/geoledger-bench.XXXXXX")"
ADMIN_PID=""
cleanup() {
  local rc=$?
  stop_pid admin-load "$ADMIN_PID"
  (exit "$rc")
  bench_cleanup
}
install_cleanup
trap cleanup EXIT

SERVER_WORKERS="$SERVER_THREADS" start_gateway_server "$DECISION_AUDIT"
DATA="$WORK/geoledgerd-$DECISION_AUDIT"
BASE="http://$GL_ADDR"

gateway_lua "$WORK/paced.lua" "$TOKEN" "$PACE_MS"
# The writing clients: each PUTs new tenants, or posts audit events about new
# subjects, one request after the other for the run.
cat >"$WORK/admin_load.py" <<'EOF'
import http.client, json, sys, threading, time
host, port, token_file, seconds, clients = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
load, batch = sys.argv[6], int(sys.argv[7])
token = open(token_file).read().strip()
tenant = json.dumps({"home_region": "eu-west-1", "status": "active", "allowed_regions": {"personal": ["eu-west-1"]}})
def events(w, n):  # subjects never seen before: each event makes a subject key
    return json.dumps({"events": [{"tenant": "acme", "action": "user.signup", "resource": "users/%d-%d-%d" % (w, n, i),
                                   "outcome": "ok", "subject": "subject-%d-%d-%d" % (w, n, i),
                                   "personal": {"email": "user-%d-%d-%d@example.com" % (w, n, i)}}
                                  for i in range(batch)]})
done, failed = [0] * clients, [0] * clients
def run(w):
    c = http.client.HTTPConnection(host, port, timeout=30)
    end = time.time() + seconds
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    while time.time() < end:
        n = done[w] + failed[w]
        if load == "tenants":
            c.request("PUT", "/v1/tenants/load-%d-%d" % (w, n), tenant, headers)
        else:
            c.request("POST", "/v1/audit/events", events(w, n), headers)
        r = c.getresponse()
        r.read()
        if r.status in (200, 201): done[w] += 1
        else: failed[w] += 1
threads = [threading.Thread(target=run, args=(w,)) for w in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
print("admin %d %d %.3f" % (sum(done), sum(failed), seconds))
EOF

WRK_ARGS=(-t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"${DURATION_S}s" --latency -s "$WORK/paced.lua")
summary() { grep '^pctl' "$1" | sed -E 's/^pctl //; s/ max=[0-9]+us//'; }

echo "geoledgerd: $GEOLEDGERD (--threads $SERVER_THREADS, --decision-audit $DECISION_AUDIT, rate limits off)"
echo "load:       wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${DURATION_S}s $BASE/v1/gateway/check, $PACE_MS ms between requests per connection"
if [[ "$ADMIN_LOAD" == tenants ]]; then
  echo "admin:      $ADMIN_CLIENTS clients, PUT /v1/tenants/<new> back to back on persistent connections"
else
  echo "admin:      $ADMIN_CLIENTS clients, POST /v1/audit/events of $AUDIT_BATCH events about new subjects (with 'personal') back to back on persistent connections"
fi
echo

echo "==== alone"
wrk_bounded $(( DURATION_S + 30 )) "$WORK/alone.txt" "${WRK_ARGS[@]}" "$BASE/v1/gateway/check" || die "wrk failed"
cat "$WORK/alone.txt"

echo "==== with the admin clients"
python3 "$WORK/admin_load.py" "$HOST" "${GL_ADDR##*:}" "$DATA/admin.token" "$(( DURATION_S + 1 ))" "$ADMIN_CLIENTS" \
  "$ADMIN_LOAD" "$AUDIT_BATCH" >"$WORK/admin.txt" 2>&1 &
ADMIN_PID=$!
wrk_bounded $(( DURATION_S + 30 )) "$WORK/loaded.txt" "${WRK_ARGS[@]}" "$BASE/v1/gateway/check" || die "wrk failed"
cat "$WORK/loaded.txt"
wait "$ADMIN_PID" || die "the admin clients failed: $(cat "$WORK/admin.txt")"
ADMIN_PID=""
read -r _ PUTS PUT_FAILED PUT_SECONDS < <(grep '^admin ' "$WORK/admin.txt") || die "no admin summary: $(cat "$WORK/admin.txt")"
(( PUT_FAILED == 0 )) || note "WARNING: $PUT_FAILED admin requests were not answered 200/201"
for f in alone loaded; do
  grep -Eq '^ *(Non-2xx or 3xx responses|Socket errors):' "$WORK/$f.txt" &&
    note "WARNING: the $f run had errors or non-2xx responses"
done

echo "==== summary"
echo "alone        $(rps "$WORK/alone.txt") req/s, $(summary "$WORK/alone.txt")"
if [[ "$ADMIN_LOAD" == tenants ]]; then
  WRITES="$(awk -v n="$PUTS" -v s="$PUT_SECONDS" 'BEGIN { printf "%.0f PUT/s", n / s }')"
else
  WRITES="$(awk -v n="$PUTS" -v s="$PUT_SECONDS" -v b="$AUDIT_BATCH" 'BEGIN { printf "%.1f POST/s (%.0f new subjects/s)", n / s, n * b / s }')"
fi
echo "admin load   $(rps "$WORK/loaded.txt") req/s, $(summary "$WORK/loaded.txt"), $WRITES"
p99() { summary "$1" | sed -E 's/.*p99=([0-9]+)us.*/\1/'; }
awk -v a="$(rps "$WORK/alone.txt")" -v l="$(rps "$WORK/loaded.txt")" -v pa="$(p99 "$WORK/alone.txt")" \
  -v pl="$(p99 "$WORK/loaded.txt")" 'BEGIN {
  printf "ratio admin-load/alone: throughput %.2f, p99 %.2f\n", l / a, pl / pa }'
