#!/usr/bin/env bash
# Every scenario with a target in issues 13 and 14, on one build, in one
# chirp process, each between two `fixed` runs (report a scenario as a
# share of the mean of the two), from data seeded once:
#
#   SEEDDIR=/tmp/seed BIN=target/release bash bench/targets.sh        # SQLite: a directory chirp-seed filled
#   CHIRP_REDIS_URL=redis://127.0.0.1:6379 CHIRP_KAFKA_BROKERS=127.0.0.1:9092 \
#     TEMPLATE=chirp_seeded BIN=target/release bash bench/targets.sh   # PostgreSQL: a database chirp-seed filled
#
# Each round starts from a copy of the seed (the directory copied, or a
# database chirp_full made from TEMPLATE). SCENARIOS (below), DURATION
# (15s), ROUNDS (1). `timeline-single` is the timeline at one connection,
# `mixed-open` the mixed workload open loop at 6.18% of the `fixed` before
# it (the issue's 5,000/s at 80,924/s), `large-post` `chirp-load large-post`.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/backends.sh
B=${BIN:-target/release}
DATA=$(mktemp -d); LOG=$DATA/chirp.log; export_chirp_settings
P="psql postgres://postgres:postgres@127.0.0.1:5432/postgres -q"
SCEN=${SCENARIOS:-fixed read-tweet fixed timeline fixed timeline-single fixed mixed fixed mixed-open fixed large-post fixed likes fixed tweet-text fixed follows fixed}
if [ -n "${TEMPLATE:-}" ]; then export CHIRP_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/chirp_full; fi
describe_machine
for round in $(seq ${ROUNDS:-1}); do
  echo "=== round $round $B ${TEMPLATE:-$SEEDDIR}"
  if [ -n "${TEMPLATE:-}" ]; then
    $P -c "DROP DATABASE IF EXISTS chirp_full WITH (FORCE)" -c "CREATE DATABASE chirp_full TEMPLATE $TEMPLATE"
  else
    find "$DATA" -maxdepth 1 -name 'chirp.db*' -delete; cp -a "$SEEDDIR"/. "$DATA"/
  fi
  prepare_backends_names full
  "$B"/chirp >>"$LOG" 2>&1 & C=$!
  wait_for_chirp
  h=0
  for s in $SCEN; do
    if [ "$s" = mixed-open ]; then
      rate=$(awk -v h="$h" 'BEGIN{printf "%d", h*0.0618}')
      echo "## mixed-open at $rate/s (0.0618 of $h), 2000 connections"
      "$B"/chirp-load run --scenario mixed --rate "$rate" --duration ${DURATION:-15s} --connections 2000 2>/dev/null | grep -E "^all"
      continue
    fi
    if [ "$s" = large-post ]; then
      echo "## large-post"; "$B"/chirp-load large-post 2>/dev/null | tail -6 ; continue
    fi
    c=64; [ "$s" = timeline-single ] && { c=1; s=timeline; }
    out=$("$B"/chirp-load run --scenario "$s" --duration ${DURATION:-15s} --connections $c 2>/dev/null)
    echo "## $s c=$c"; echo "$out" | grep -E "^all"
    [ "$s" = fixed ] && h=$(awk '$1=="all"{print $4}' <<<"$out")
  done
  echo "chirp peak RSS: $(peak_rss_mib $C) MiB"
  kill $C; wait $C
done
rm -rf "$DATA"
