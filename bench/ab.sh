#!/usr/bin/env bash
# Before and after on one data set: seeds once, then runs the same scenarios
# against each build in turn, ROUNDS times, so that two commits are compared
# on the same data, the same backends and the same hour. Each build's run
# starts and ends with `fixed` (GET /healthz through chirp): report a
# scenario as a share of the `fixed` measured around it.
#
#   BINS="/tmp/before /tmp/after" SCENARIOS="fixed read-tweet fixed" bash bench/ab.sh
#   CHIRP_DATABASE_URL=postgres://postgres@127.0.0.1:5432/chirp_bench CHIRP_REDIS_URL=redis://127.0.0.1:6379 \
#     BINS="/tmp/before /tmp/after" bash bench/ab.sh
#
# BINS: directories holding a chirp binary each (the first one's chirp-seed
# and chirp-load are used for all). Settings as in run.sh: USERS, TWEETS,
# DURATION (10s), CONNECTIONS (64), SCENARIOS (fixed read-tweet timeline
# fixed), ROUNDS (2), OPEN_SHARE (0.0618: `mixed-open` in SCENARIOS offers
# the mixed workload open loop at that share of the `fixed` just before it,
# the issue's 5,000/s at 80,924/s). Every run starts from the data as seeded (the SQLite
# file copied back, or the PostgreSQL database made again from a template):
# a like scenario run second would otherwise mostly find likes already there.
# `timeline-single` in SCENARIOS is the timeline at one connection,
# `large-post` `chirp-load large-post` (posts by the most-followed account).
#
# SEED_FROM: data seeded before, used instead of seeding (and kept): a
# directory chirp-seed filled (SQLite) or a database it filled, as a
# template (PostgreSQL). One build against every target, seeded once:
#
#   CHIRP_DATABASE_URL=… SEED_FROM=chirp_seeded BINS=target/release ROUNDS=1 SCENARIOS="fixed read-tweet fixed
#     timeline fixed timeline-single fixed mixed fixed mixed-open fixed large-post fixed likes fixed
#     tweet-text fixed follows fixed" DURATION=15s bash bench/ab.sh
#
# FRESH_TANSU: a directory; each run then starts tansu again on an empty
# database there (see fresh_tansu in backends.sh), tansu on PATH.
#
# SEED_FROM may also name one seed per build, in the order of BINS, for
# builds whose data differ (one with a migration the other lacks, each
# seeded by its own chirp-seed):
#
#   SEED_FROM="/tmp/seed-before /tmp/seed-after" BINS="/tmp/before /tmp/after" bash bench/ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-100000}
TWEETS=${TWEETS:-1000000}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
SCENARIOS=${SCENARIOS:-fixed read-tweet timeline fixed}
ROUNDS=${ROUNDS:-2}
OPEN_SHARE=${OPEN_SHARE:-0.0618}
read -ra BUILDS <<<"${BINS:?BINS: the build directories to compare}"
TOOLS=$(realpath "${BUILDS[0]}")
. bench/backends.sh
prepare_backends ab
CHIRP=
cleanup() {
  if [ -n "$CHIRP" ]; then kill "$CHIRP" 2>/dev/null || true; wait "$CHIRP" 2>/dev/null || true; fi
  rm -rf "$DATA"
  if [ -z "${SEED_FROM:-}" ]; then
    rm -rf "${SEEDED:-}"
    if [ -n "${DB:-}" ]; then psql "${CHIRP_DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS $TEMPLATE"; fi
  fi
}
trap cleanup EXIT

describe_machine
if [[ "${CHIRP_DATABASE_URL:-}" == postgres* ]]; then
  DB=${CHIRP_DATABASE_URL##*/}
  TEMPLATE=${SEED_FROM:-${DB}_seeded}
fi
if [ -n "${SEED_FROM:-}" ]; then
  echo "seed: $SEED_FROM, seeded before"
  SEEDED=$SEED_FROM
else
  echo "seed: chirp-seed --users $USERS --tweets $TWEETS"
  "$TOOLS"/chirp-seed --users "$USERS" --tweets "$TWEETS" 2>&1 | grep -E "^done"
  SEEDED=$(mktemp -d)
  if [ -n "${DB:-}" ]; then
    psql "${CHIRP_DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS $TEMPLATE" -c "ALTER DATABASE $DB RENAME TO $TEMPLATE"
  else
    cp -a "$DATA"/. "$SEEDED"/
  fi
fi
read -ra SEEDS <<<"${SEED_FROM:-}"
if [ "${#SEEDS[@]}" -gt 1 ] && [ "${#SEEDS[@]}" -ne "${#BUILDS[@]}" ]; then
  echo "SEED_FROM names ${#SEEDS[@]} seeds for ${#BUILDS[@]} builds" >&2
  exit 1
fi
# fresh N: the data as seeded for the Nth build.
fresh() {
  local seed=${TEMPLATE:-$SEEDED}
  if [ "${#SEEDS[@]}" -gt 1 ]; then seed=${SEEDS[$1]}; fi
  restore_seed "$seed" ab
}
for round in $(seq "$ROUNDS"); do
  for i in "${!BUILDS[@]}"; do
    build=${BUILDS[$i]}
    echo
    echo "=== round $round: $build"
    fresh "$i"
    "$build"/chirp >>"$LOG" 2>&1 &
    CHIRP=$!
    wait_for_chirp
    healthz=0
    for scenario in $SCENARIOS; do
      if [ "$scenario" = mixed-open ] && [ "$healthz" = 0 ]; then
        echo "## mixed-open: skipped, no fixed run before it to set its rate"
        continue
      elif [ "$scenario" = mixed-open ]; then
        # The issue's open loop (5,000/s when /healthz answered 80,924/s) as
        # the same share of the /healthz measured just before.
        rate=$(awk -v h="$healthz" -v s="$OPEN_SHARE" 'BEGIN { printf "%d", h * s }')
        echo "## mixed-open: chirp-load run --scenario mixed --rate $rate --duration $DURATION --connections 2000 ($OPEN_SHARE of $healthz/s)"
        "$TOOLS"/chirp-load run --scenario mixed --rate "$rate" --duration "$DURATION" --connections 2000 2>/dev/null
        continue
      elif [ "$scenario" = large-post ]; then
        echo "## large-post: chirp-load large-post --posts 20 --sample 5"
        "$TOOLS"/chirp-load large-post --posts 20 --sample 5 2>/dev/null
        continue
      fi
      connections=$CONNECTIONS
      if [ "$scenario" = timeline-single ]; then connections=1; fi
      echo "## $scenario: chirp-load run --scenario ${scenario%-single} --duration $DURATION --connections $connections"
      out=$("$TOOLS"/chirp-load run --scenario "${scenario%-single}" --duration "$DURATION" --connections "$connections" 2>/dev/null)
      echo "$out"
      if [ "$scenario" = fixed ]; then healthz=$(awk '$1 == "all" { print $4 }' <<<"$out"); fi
    done
    echo "chirp peak RSS: $(peak_rss_mib "$CHIRP") MiB"
    kill "$CHIRP"
    wait "$CHIRP" || true
    CHIRP=
  done
done
