#!/usr/bin/env bash
# Where PostgreSQL's time goes under one scenario: seeds a database once
# (kept as ${DB}_seeded for the next run), starts chirp on a fresh copy,
# warms up, resets pg_stat_statements, runs the scenario and prints the
# statements by total time, with calls, mean time and rows.
#
#   CHIRP_DATABASE_URL=postgres://postgres@127.0.0.1:5432/chirp_prof \
#   CHIRP_REDIS_URL=redis://127.0.0.1:6379 SCENARIO=mixed bash bench/pg_statements.sh
#
# PostgreSQL must load the extension (a restart):
#   shared_preload_libraries = 'pg_stat_statements'   pg_stat_statements.track = all
# Settings: BIN (target/release), SCENARIO (mixed), DURATION (10s), WARMUP
# (5s), CONNECTIONS (64), TOP (15), USERS, TWEETS, RESEED (set: seed again).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CHIRP_DATABASE_URL:?CHIRP_DATABASE_URL: a PostgreSQL database to (re)create}"
BIN=$(realpath "${BIN:-${CARGO_TARGET_DIR:-target}/release}")
SCENARIO=${SCENARIO:-mixed}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-5s}
CONNECTIONS=${CONNECTIONS:-64}
TOP=${TOP:-15}
USERS=${USERS:-100000}
TWEETS=${TWEETS:-1000000}
DB=${CHIRP_DATABASE_URL##*/}
ADMIN=${CHIRP_DATABASE_URL%/*}/postgres
psql "$ADMIN" -qAtc "SHOW shared_preload_libraries" | grep -q pg_stat_statements ||
  { echo "PostgreSQL does not load pg_stat_statements (see the head of this script)" >&2; exit 1; }

. bench/backends.sh
if [ -n "${RESEED:-}" ] || [ -z "$(psql "$ADMIN" -qAtc "SELECT 1 FROM pg_database WHERE datname = '${DB}_seeded'")" ]; then
  prepare_backends prof
  echo "seed: chirp-seed --users $USERS --tweets $TWEETS"
  "$BIN"/chirp-seed --users "$USERS" --tweets "$TWEETS" 2>&1 | grep -E "^done"
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS ${DB}_seeded" -c "ALTER DATABASE $DB RENAME TO ${DB}_seeded"
  rm -rf "$DATA"
fi
DATA=$(mktemp -d)
LOG=$DATA/chirp.log
psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB TEMPLATE ${DB}_seeded"
psql "$CHIRP_DATABASE_URL" -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
prepare_backends_names prof
export_chirp_settings
"$BIN"/chirp >"$LOG" 2>&1 &
CHIRP=$!
trap 'kill $CHIRP 2>/dev/null; wait $CHIRP 2>/dev/null; rm -rf "$DATA"' EXIT
wait_for_chirp

describe_machine
echo "## warm-up: chirp-load run --scenario $SCENARIO --duration $WARMUP --connections $CONNECTIONS"
"$BIN"/chirp-load run --scenario "$SCENARIO" --duration "$WARMUP" --connections "$CONNECTIONS" 2>/dev/null | tail -n 3
psql "$CHIRP_DATABASE_URL" -qAtc "SELECT pg_stat_statements_reset()" >/dev/null
echo "## chirp-load run --scenario $SCENARIO --duration $DURATION --connections $CONNECTIONS"
"$BIN"/chirp-load run --scenario "$SCENARIO" --duration "$DURATION" --connections "$CONNECTIONS" 2>/dev/null
echo
echo "## statements by total time"
psql "$CHIRP_DATABASE_URL" -P pager=off -c "
  SELECT round(total_exec_time) AS total_ms,
         round((100 * total_exec_time / sum(total_exec_time) OVER ())::numeric, 1) AS pct,
         calls, round(mean_exec_time::numeric, 2) AS mean_ms, rows,
         left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
   ORDER BY total_exec_time DESC LIMIT $TOP"
