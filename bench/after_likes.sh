#!/usr/bin/env bash
# The open loop right after a burst of likes, on PostgreSQL + Redis + tansu:
# for each build in BINS, ROUNDS times, a fresh copy of a seeded database,
# `fixed` 10 s, `likes` 15 s, then the mixed workload open loop at 6.18% of
# that `fixed` (2,000 connections) in SEGMENTS (warm-up:duration each, a
# fresh load-tool process each; default "0s:6s 2s:15s"), with chirp's
# counts of timeline builds and reads of likes after each. Seeds
# chirp_diag_seeded once (about 5 minutes) and keeps it for later runs.
#
#   BINS="/tmp/before /tmp/after" ROUNDS=2 bash bench/after_likes.sh
#
# STATEMENTS=1: PostgreSQL's statements over the segments
# (pg_stat_statements must be loaded). PERF=1: `perf record -a -g` over
# the first segment's first PERF_SECONDS (6), into /tmp/perf.data.
set -uo pipefail
cd "$(dirname "$0")/.."
export CHIRP_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/chirp_diag CHIRP_REDIS_URL=redis://127.0.0.1:6379 CHIRP_KAFKA_BROKERS=127.0.0.1:9092
. bench/backends.sh
DATA=$(mktemp -d); LOG=$DATA/chirp.log; export_chirp_settings
read -ra BUILDS <<<"$BINS"
T=${BUILDS[0]}
P="psql postgres://postgres:postgres@127.0.0.1:5432/postgres -q"
if ! $P -Atc "select 1 from pg_database where datname='chirp_diag_seeded'" | grep -q 1; then
  $P -c "DROP DATABASE IF EXISTS chirp_diag WITH (FORCE)" -c "CREATE DATABASE chirp_diag"
  prepare_backends_names diag
  "$T"/chirp-seed --users 100000 --tweets 1000000 2>&1 | grep -E "^done"
  $P -c "ALTER DATABASE chirp_diag RENAME TO chirp_diag_seeded"
  psql postgres://postgres:postgres@127.0.0.1:5432/chirp_diag_seeded -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" 2>/dev/null || true
fi
m() { curl -s 127.0.0.1:18080/metrics | grep -E "^(chirp_viewer_likes_reads_total|chirp_timeline_builds_total)" | tr '\n' ' '; echo; }
for round in $(seq ${ROUNDS:-1}); do
for b in "${BUILDS[@]}"; do
  echo "=== round $round $b"
  $P -c "DROP DATABASE IF EXISTS chirp_diag WITH (FORCE)" -c "CREATE DATABASE chirp_diag TEMPLATE chirp_diag_seeded"
  prepare_backends_names diag
  "$b"/chirp >>"$LOG" 2>&1 & C=$!
  wait_for_chirp
  h=$("$T"/chirp-load run --scenario fixed --duration 10s --connections 64 2>/dev/null | awk '$1=="all"{print $4}')
  echo "healthz $h"
  "$T"/chirp-load run --scenario likes --duration 15s --connections 64 2>/dev/null | grep -E "^all|like"
  rate=$(awk -v h="$h" 'BEGIN{printf "%d", h*0.0618}')
  echo "rate $rate"; m
  psql postgres://postgres:postgres@127.0.0.1:5432/chirp_diag -qc "select pg_stat_statements_reset()" >/dev/null 2>&1 || true
  if [ -n "${PERF:-}" ]; then
    rm -f /tmp/load.err
    (for _ in $(seq 600); do grep -q "^running" /tmp/load.err 2>/dev/null && break; sleep 0.05; done; perf record -F 499 -a -g -o /tmp/perf.data -- sleep ${PERF_SECONDS:-6} > /tmp/perf.log 2>&1) &
  fi
  for seg in ${SEGMENTS:-0s:6s 2s:15s}; do
    echo "-- segment warmup ${seg%:*} duration ${seg#*:}"
    "$T"/chirp-load run --scenario mixed --rate "$rate" --connections 2000 --warmup ${seg%:*} --duration ${seg#*:} 2>>/tmp/load.err | grep -vE "^(logging|seed)"; m
  done
  h2=$("$T"/chirp-load run --scenario fixed --duration 10s --connections 64 2>/dev/null | awk '$1=="all"{print $4}')
  echo "healthz after $h2"
  if [ -n "${STATEMENTS:-}" ]; then
    psql postgres://postgres:postgres@127.0.0.1:5432/chirp_diag -c "select calls, round(total_exec_time::numeric,0) ms, rows/greatest(calls,1) r, left(regexp_replace(query,'\s+',' ','g'),90) q from pg_stat_statements order by total_exec_time desc limit 12"
  fi
  kill $C; wait $C || true
done
done
rm -rf "$DATA"
