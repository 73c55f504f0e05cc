#!/usr/bin/env bash
# Durable audit appends, in process: the geoledger Ledger over RocksDB against
# a PostgreSQL 15 hash-chained table, same entry size, same concurrency, same
# batching, in one invocation.
#
# geoledger side: build-bench/bench/ledger_bench, BM_DurableAppend with
#   1, 8 and 64 threads calling Ledger::Append with 1 event per call, then
#   with 32 events per call. Append returns once the batch is synced
#   (RocksDB WAL, sync=true). Entries serialize to ~300 bytes.
# PostgreSQL side: a private cluster (initdb into a temp dir, 127.0.0.1 on a
#   free port, unix socket in the temp dir, run as user postgres), default
#   settings plus synchronous_commit=on and fsync=on. Table audit_log has a
#   BEFORE INSERT FOR EACH ROW trigger that locks the one-row chain_head
#   (SELECT ... FOR UPDATE), sets idx and prev_hash, computes
#   entry_hash = digest(prev_hash || row, 'sha256') (pgcrypto) and stores the
#   new head, so the chain is serialised. pgbench -c N -j min(N,2) -M prepared
#   runs one INSERT per transaction (1 row), then one INSERT ... SELECT of 32
#   rows per transaction. Rows carry the same fields and ~300 bytes.
# Prints a table: events per call/transaction, writers, ledger appends/s,
# postgres rows/s, ratio ledger/postgres.
#
# Environment (all optional):
#   BUILD_DIR      build directory for ledger_bench   [<repo>/build-bench]
#   DURATION       seconds per measured configuration [10] (max 60)
#   BATCH          events per call / rows per tx for the batched case [32]
#   CLIENTS        writer counts                       ["1 8 64"]
#   BENCH_TMPDIR   where the ledger and the cluster live (must be a real disk,
#                  not tmpfs, or "durable" means nothing) [${TMPDIR:-/tmp}]
#   SKIP_BUILD=1   use the existing BUILD_DIR/bench/ledger_bench
#
# Requires root (the cluster runs as postgres via runuser). Installs nothing
# itself beyond `bash scripts/install-deps.sh`.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$REPO_ROOT/build-bench}"
DURATION="${DURATION:-10}"
BATCH="${BATCH:-32}"
CLIENTS="${CLIENTS:-1 8 64}"
BENCH_TMPDIR="${BENCH_TMPDIR:-${TMPDIR:-/tmp}}"

[[ "$DURATION" =~ ^[0-9]+$ ]] && (( DURATION > 0 && DURATION <= 60 )) || die "DURATION must be 1-60 seconds"
[[ "$BATCH" =~ ^[0-9]+$ ]] && (( BATCH > 1 && BATCH <= 8192 )) || die "BATCH must be 2-8192"
[[ "$(id -u)" -eq 0 ]] || die "run as root (the PostgreSQL cluster is started as user postgres via runuser)"

bash "$REPO_ROOT/scripts/install-deps.sh"
require_tools python3 runuser cmake ninja
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[[ -x "$PGBIN/initdb" && -x "$PGBIN/pgbench" ]] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
id postgres >/dev/null 2>&1 || die "user postgres does not exist"

FSTYPE="$(require_real_disk "$BENCH_TMPDIR")"

# ---- build ------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  build_targets "$REPO_ROOT" "$BUILD_DIR" ledger_bench
fi
LEDGER_BENCH="$BUILD_DIR/bench/ledger_bench"
[[ -x "$LEDGER_BENCH" ]] || die "$LEDGER_BENCH not built"

WORK="$(mktemp -d "$BENCH_TMPDIR/geoledger-append-bench.XXXXXX")"
chmod 711 "$WORK"  # postgres must reach $WORK/pg; nothing else here is listable by others
PGDATA_DIR="$WORK/pg/data"
PG_STARTED=0

pg() { runuser -u postgres -- "$@"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if (( PG_STARTED )); then
    pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 30 stop >/dev/null 2>&1 || {
      local pid
      pid="$(head -n 1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)"
      if [[ "$pid" =~ ^[0-9]+$ ]]; then
        note "pg_ctl stop failed; sending SIGKILL to postmaster $pid"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    }
  fi
  if (( rc != 0 && rc != 130 && rc != 143 )) && [[ -s "$WORK/pg/server.log" ]]; then
    echo "---- PostgreSQL log (last 20 lines) ----" >&2
    tail -n 20 "$WORK/pg/server.log" >&2
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CORES="$(nproc)"
echo "machine:  $CORES cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -r)"
echo "storage:  $BENCH_TMPDIR ($FSTYPE on $(df --output=source "$BENCH_TMPDIR" | tail -n 1))"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before the run"
echo

# ---- geoledger ----------------------------------------------------------------
echo "==== geoledger: $LEDGER_BENCH --benchmark_filter=^BM_DurableAppend --benchmark_min_time=$DURATION"
GEOLEDGER_BENCH_TMPDIR="$WORK" timeout $(( DURATION * 30 + 120 )) "$LEDGER_BENCH" \
  --benchmark_filter='^BM_DurableAppend' --benchmark_min_time="$DURATION" \
  --benchmark_out="$WORK/ledger.json" --benchmark_out_format=json
echo

# ---- PostgreSQL ---------------------------------------------------------------
mkdir -p "$WORK/pg/sock"
chown -R postgres:postgres "$WORK/pg"
chmod 700 "$WORK/pg"
PG_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
pg "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres -A trust -E UTF8 --locale=C >"$WORK/pg/initdb.log" 2>&1 \
  || { cat "$WORK/pg/initdb.log" >&2; die "initdb failed"; }
PG_STARTED=1
pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$WORK/pg/server.log" -w -t 60 start -o \
  "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$WORK/pg/sock -c synchronous_commit=on -c fsync=on -c max_connections=100" \
  >/dev/null || die "PostgreSQL did not start"
PSQL=(pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK/pg/sock" -p "$PG_PORT" -U postgres -d postgres)
PG_VERSION="$("${PSQL[@]}" -Atc 'SHOW server_version')"
echo "==== PostgreSQL $PG_VERSION (pid $(head -n 1 "$PGDATA_DIR/postmaster.pid"), 127.0.0.1:$PG_PORT):" \
  "synchronous_commit=$("${PSQL[@]}" -Atc 'SHOW synchronous_commit')," \
  "fsync=$("${PSQL[@]}" -Atc 'SHOW fsync')," \
  "wal_sync_method=$("${PSQL[@]}" -Atc 'SHOW wal_sync_method')," \
  "shared_buffers=$("${PSQL[@]}" -Atc 'SHOW shared_buffers')"

"${PSQL[@]}" <<'SQL'
CREATE EXTENSION pgcrypto;
CREATE TABLE chain_head (
  id int PRIMARY KEY CHECK (id = 1),
  next_idx bigint NOT NULL,
  head bytea NOT NULL
);
INSERT INTO chain_head VALUES (1, 0, decode(repeat('00', 32), 'hex'));
CREATE TABLE audit_log (
  idx bigint PRIMARY KEY,
  ts timestamptz NOT NULL DEFAULT now(),
  region text NOT NULL,
  tenant text NOT NULL,
  actor text NOT NULL,
  action text NOT NULL,
  resource text NOT NULL,
  outcome text NOT NULL,
  subject_pseudonym bytea NOT NULL,
  details text NOT NULL,
  prev_hash bytea NOT NULL,
  entry_hash bytea NOT NULL
);
-- Serialises the chain: the head row stays locked until the inserting
-- transaction commits, so concurrent inserts chain one after another.
CREATE FUNCTION audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  h chain_head%ROWTYPE;
BEGIN
  SELECT * INTO h FROM chain_head WHERE id = 1 FOR UPDATE;
  NEW.idx := h.next_idx;
  NEW.prev_hash := h.head;
  NEW.entry_hash := digest(h.head || convert_to(concat_ws(E'\x1f', NEW.idx, NEW.ts, NEW.region, NEW.tenant,
      NEW.actor, NEW.action, NEW.resource, NEW.outcome, encode(NEW.subject_pseudonym, 'hex'), NEW.details),
      'UTF8'), 'sha256');
  UPDATE chain_head SET next_idx = h.next_idx + 1, head = NEW.entry_hash WHERE id = 1;
  RETURN NEW;
END $$;
CREATE TRIGGER audit_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_chain();
SQL

# Row content: the same fields as a ledger entry. Data bytes per row:
# idx 8 + ts 8 + region 9 + tenant 9 + actor 5 + action 11 + resource 17 +
# outcome 7 + pseudonym 32 + prev_hash 32 + details 162 = 300 (entry_hash extra).
PAD="$(printf 'x%.0s' $(seq 1 162))"
PSEUDONYM="\\x$(printf '5a%.0s' $(seq 1 32))"
COLS="region, tenant, actor, action, resource, outcome, subject_pseudonym, details"
cat >"$WORK/pg/one.sql" <<EOF
\set n random(0, 999999)
INSERT INTO audit_log ($COLS) VALUES ('eu-west-1', 'acme-corp', 'bench', 'record.read', 'customers/' || (1000000 + :n), 'allowed', '$PSEUDONYM'::bytea, '$PAD');
EOF
cat >"$WORK/pg/batch.sql" <<EOF
\set n random(0, 999999)
INSERT INTO audit_log ($COLS) SELECT 'eu-west-1', 'acme-corp', 'bench', 'record.read', 'customers/' || (1000000 + (:n + g) % 1000000), 'allowed', '$PSEUDONYM'::bytea, '$PAD' FROM generate_series(1, $BATCH) AS g;
EOF
chown postgres:postgres "$WORK/pg/one.sql" "$WORK/pg/batch.sql"

reset_table() {
  "${PSQL[@]}" -c "TRUNCATE audit_log; UPDATE chain_head SET next_idx = 0, head = decode(repeat('00', 32), 'hex'); CHECKPOINT;"
}

: >"$WORK/pg.tsv"
for per_tx in 1 "$BATCH"; do
  script="$WORK/pg/one.sql"
  (( per_tx == 1 )) || script="$WORK/pg/batch.sql"
  for c in $CLIENTS; do
    reset_table
    j=$(( c < 2 ? c : 2 ))
    out="$WORK/pg/pgbench-$per_tx-$c.txt"
    echo "---- pgbench -n -M prepared -c $c -j $j -T $DURATION -f $(basename "$script")  ($per_tx row(s) per transaction)"
    timeout $(( DURATION + 60 )) runuser -u postgres -- "$PGBIN/pgbench" -n -M prepared -c "$c" -j "$j" -T "$DURATION" \
      -h "$WORK/pg/sock" -p "$PG_PORT" -U postgres -f "$script" postgres >"$out" 2>&1 \
      || { cat "$out" >&2; die "pgbench failed"; }
    grep -E '^(number of (transactions actually processed|failed transactions)|latency average|tps)' "$out"
    tps="$(awk '/^tps = / { print $3; exit }' "$out")"
    failed="$(awk -F': ' '/^number of failed transactions/ { split($2, a, " "); print a[1]; exit }' "$out")"
    stats="$("${PSQL[@]}" -AtF ' ' -c "SELECT count(*), count(*) - count(DISTINCT idx), coalesce(max(idx) + 1, 0),
        round(avg(8 + 8 + octet_length(region) + octet_length(tenant) + octet_length(actor) + octet_length(action)
          + octet_length(resource) + octet_length(outcome) + octet_length(subject_pseudonym) + octet_length(details)
          + octet_length(prev_hash)), 1),
        round(avg(pg_column_size(a.*)), 1) FROM audit_log a")"
    read -r rows dup next data_bytes tuple_bytes <<<"$stats"
    # The chain must be unbroken: idx 0..n-1, each prev_hash the previous entry_hash.
    broken="$("${PSQL[@]}" -Atc "SELECT count(*) FROM audit_log a JOIN audit_log b ON b.idx = a.idx + 1 WHERE b.prev_hash <> a.entry_hash")"
    echo "rows=$rows next_idx=$next duplicate_idx=$dup chain_breaks=$broken data_bytes/row=$data_bytes pg_column_size/row=$tuple_bytes"
    [[ "$rows" == "$next" && "$dup" == 0 && "$broken" == 0 ]] || die "hash chain is not contiguous"
    printf '%s\t%s\t%s\t%s\t%s\n' "$per_tx" "$c" "$tps" "${failed:-0}" "$data_bytes" >>"$WORK/pg.tsv"
  done
done
echo

# ---- table --------------------------------------------------------------------
python3 - "$WORK/ledger.json" "$WORK/pg.tsv" "$BATCH" <<'PY'
import json, re, sys
ledger = {}
entry_bytes = {}
commit = {}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    m = re.match(r"BM_DurableAppend/events_per_call:(\d+)/real_time/threads:(\d+)$", b["name"])
    if not m or b.get("run_type") != "iteration" or b.get("error_occurred"):
        continue
    k = (int(m.group(1)), int(m.group(2)))
    ledger[k] = b["items_per_second"]
    entry_bytes[k] = b.get("entry_bytes", 0)
    commit[k] = b.get("events_per_commit", 0)
pgv = {}
for line in open(sys.argv[2]):
    per_tx, c, tps, failed, data = line.split("\t")
    pgv[(int(per_tx), int(c))] = (float(tps) * int(per_tx), int(failed), float(data))
print("| events per call / rows per tx | writers | geoledger appends/s | entry bytes | events per sync | postgres rows/s | row data bytes | ratio ledger/postgres |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for k in sorted(set(ledger) | set(pgv)):
    l = ledger.get(k)
    p = pgv.get(k)
    ratio = f"{l / p[0]:.1f}" if l and p and p[0] > 0 else "n/a"
    print(f"| {k[0]} | {k[1]} | {l:,.0f} | {entry_bytes[k]:.0f} | {commit[k]:.1f} | "
          f"{p[0]:,.0f} | {p[2]:.0f} | {ratio} |" if l and p else f"| {k[0]} | {k[1]} | missing |")
    if p and p[1]:
        print(f"  (postgres: {p[1]} failed transactions)")
for k in sorted(ledger):
    if k in pgv and pgv[k][0] > 0:
        print(f"ratio ledger/postgres = {ledger[k] / pgv[k][0]:.1f} ({k[0]} per call, {k[1]} writers: "
              f"ledger {ledger[k]:,.0f}/s, postgres {pgv[k][0]:,.0f}/s)")
PY
