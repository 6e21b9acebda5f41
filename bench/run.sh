#!/usr/bin/env bash
# The load report: builds chirp, chirp-seed and chirp-load (release), seeds a
# fresh database, starts chirp on 127.0.0.1:18080 and runs each scenario with
# chirp-load, then the same `fixed` scenario against a minimal axum server
# (the HTTP ceiling of this machine). Prints the machine, the commands and,
# per scenario, per-endpoint requests/s, p50/p90/p99/max and peak RSS.
#
#   bash bench/run.sh                               # SQLite, in-process cache and broker
#   CHIRP_DATABASE_URL=postgres://postgres@127.0.0.1:5432/chirp_bench \
#   CHIRP_REDIS_URL=redis://127.0.0.1:6379 CHIRP_KAFKA_BROKERS=127.0.0.1:9092 bash bench/run.sh
#
# Settings (environment): USERS (100000: enough for accounts with tens of thousands of followers), TWEETS (1000000), DURATION (20s),
# CONNECTIONS (64), RATE (10000: the open-loop rate of the mixed scenario; large-post: posts by the
# most-followed account, acknowledged and seen by sampled followers; *-single: one connection),
# SCENARIOS (all below), KEEP_DATA (set: keep the seeded data dir), BIN (a directory holding
# chirp, chirp-seed and chirp-load to run instead of building: before/after runs of other commits).
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-100000}
TWEETS=${TWEETS:-1000000}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}
RATE=${RATE:-10000}
# The mixed workload runs first, on the seeded data as it is; the write
# scenarios run last, since they change it (tweets by the load users, and
# those users following one another).
SCENARIOS=${SCENARIOS:-fixed mixed mixed-open read-tweet timeline views search-tweets search-users likes tweet-text tweet-image follows}

if [ -z "${BIN:-}" ]; then
  cargo build --release --workspace --bins
  BIN=${CARGO_TARGET_DIR:-target}/release
fi
BIN=$(realpath "$BIN")
. bench/backends.sh
prepare_backends bench
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  if [ -z "${KEEP_DATA:-}" ]; then rm -rf "$DATA"; else echo "data kept in $DATA"; fi
}
trap cleanup EXIT

describe_machine
echo "seed: chirp-seed --users $USERS --tweets $TWEETS"
/usr/bin/time -f "seed: %es, peak RSS %MKiB" "$BIN"/chirp-seed --users "$USERS" --tweets "$TWEETS" 2>&1 | grep -E "^(seed|done|users|follows|tweets|likes)"
if [ -z "${CHIRP_DATABASE_URL:-}" ]; then echo "database file: $(du -h "$DATA/chirp.db" | cut -f1)"; fi

"$BIN"/chirp >"$LOG" 2>&1 &
CHIRP=$!
PIDS+=("$CHIRP")
wait_for_chirp

load() { # load SCENARIO [chirp-load args...]
  local scenario=$1; shift
  echo
  local connections=${LOAD_CONNECTIONS:-$CONNECTIONS}
  echo "## $scenario: chirp-load run --scenario $scenario --duration $DURATION --connections $connections $*"
  "$BIN"/chirp-load run --scenario "$scenario" --duration "$DURATION" --connections "$connections" "$@" 2>/dev/null
}

for scenario in $SCENARIOS; do
  case $scenario in
    mixed-open) LOAD_CONNECTIONS=2000 load mixed --rate "$RATE" ;;
    large-post)
      echo
      echo "## large-post: chirp-load large-post --posts 20 --sample 5"
      "$BIN"/chirp-load large-post --posts 20 --sample 5 2>/dev/null ;;
    *-single) LOAD_CONNECTIONS=1 load "${scenario%-single}" ;;  # latency without queueing
    *) load "$scenario" ;;
  esac
  echo "chirp peak RSS so far: $(peak_rss_mib "$CHIRP") MiB"
done

# The ceiling: the same request against a minimal axum handler with a fixed JSON body.
"$BIN"/chirp-load serve-baseline --listen 127.0.0.1:18081 2>/dev/null &
PIDS+=("$!")
sleep 0.5
echo
echo "## baseline: a minimal axum app (GET /healthz, fixed JSON), same load tool"
"$BIN"/chirp-load run --base http://127.0.0.1:18081 --scenario fixed --duration "$DURATION" \
  --connections "$CONNECTIONS" 2>/dev/null
