#!/usr/bin/env bash
# Load benchmark: builds chirp (release), starts it on a fresh data dir on
# 127.0.0.1:18080, seeds it through the API (bench/seed.py), then runs each
# wrk scenario and prints one RESULT line per scenario with peak RSS.
#
#   bash bench/run.sh                          # SQLite, in-process cache and broker
#   CHIRP_DATABASE_URL=postgres://postgres@127.0.0.1:5432/chirp_bench \
#   CHIRP_REDIS_URL=redis://127.0.0.1:6379 bash bench/run.sh
#
# DURATION (10s), THREADS (1), CONNECTIONS (64), USERS (200), TWEETS_PER_USER (5).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-64}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

cargo build --release --bin chirp
DATA=$(mktemp -d)
LOG=$DATA/chirp.log
if [[ "${CHIRP_DATABASE_URL:-}" == postgres* ]]; then
  db=${CHIRP_DATABASE_URL##*/}
  psql "${CHIRP_DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
fi
[ -n "${CHIRP_REDIS_URL:-}" ] && export CHIRP_REDIS_PREFIX="bench$RANDOM:"
CHIRP_DATA_DIR=$DATA CHIRP_LISTEN=127.0.0.1:18080 CHIRP_AUTH_RATE_LIMIT=0 CHIRP_LOG=info,tower_http=warn \
  ./target/release/chirp >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do curl -sf 127.0.0.1:18080/healthz >/dev/null && break; sleep 0.1; done

CHIRP_BENCH_LOG=$LOG python3 bench/seed.py
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(lscpu | sed -n 's/^Model name: *//p')"
echo "backend: database=$([ -n "${CHIRP_DATABASE_URL:-}" ] && echo postgres || echo sqlite)" \
  "cache=$([ -n "${CHIRP_REDIS_URL:-}" ] && echo redis || echo memory)" \
  "broker=$([ -n "${CHIRP_KAFKA_BROKERS:-}" ] && echo kafka || echo memory)"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
for scenario in ${SCENARIOS:-baseline views likes timeline read_tweet tweet_text}; do
  result=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "bench/wrk/$scenario.lua" http://127.0.0.1:18080 | grep '^RESULT')
  rss=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
  printf '%-12s %s peak_rss=%dMiB\n' "$scenario" "${result#RESULT }" $((rss / 1024))
done
