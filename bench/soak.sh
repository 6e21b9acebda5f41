#!/usr/bin/env bash
# The long soak: chirp under a steady open-loop mixed workload for hours,
# with a dependency fault injected between slices, printing one line per
# slice (requests, errors, p50/p99, chirp's RSS now and at peak) so that a
# leak, a slowdown or a state that never recovers shows as a trend. Not part
# of .ci/run (it runs for DURATION; one hour by default).
#
#   bash bench/soak.sh                              # SQLite, in-process cache and broker
#   CHIRP_DATABASE_URL=postgres://postgres@127.0.0.1:5432/chirp_soak \
#   CHIRP_REDIS_URL=redis://127.0.0.1:6379 CHIRP_KAFKA_BROKERS=127.0.0.1:9092 bash bench/soak.sh
#
# Settings (environment): DURATION in seconds (3600), SLICE in seconds (300),
# RATE (250 requests/s: about half of what a 2-core machine running chirp,
# PostgreSQL, Redis, tansu and the load tool can serve, so that a trend shows
# wear rather than queueing; at 500 such a machine is saturated and a fault's
# backlog never drains), USERS (10000), TWEETS (100000), FAULTS (1: inject
# faults; 0: none). The first slice is clean; then one fault in the middle
# of each slice, under load, in turn:
#   crash     chirp is killed with SIGKILL and started again on the same data
#   database  every PostgreSQL connection chirp holds is terminated (PostgreSQL only)
#   cache     every Redis client connection is killed (Redis only; CLIENT KILL TYPE normal)
# A slice's errors are those its fault caused (503s while a dependency is
# away, refused connections while chirp restarts); peak RSS is of the
# process running at the end of the slice (a crash starts a new one).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-3600}
SLICE=${SLICE:-300}
RATE=${RATE:-250}
USERS=${USERS:-10000}
TWEETS=${TWEETS:-100000}
FAULTS=${FAULTS:-1}

cargo build --release --workspace --bins
. bench/backends.sh
prepare_backends soak
CHIRP=
cleanup() {
  [ -n "$CHIRP" ] && kill "$CHIRP" 2>/dev/null && wait "$CHIRP" 2>/dev/null
  rm -rf "$DATA"
}
trap cleanup EXIT

start_chirp() {
  "${CARGO_TARGET_DIR:-target}"/release/chirp >>"$LOG" 2>&1 &
  CHIRP=$!
  for _ in $(seq 600); do curl -sf 127.0.0.1:18080/readyz >/dev/null && return 0; sleep 0.1; done
  echo "chirp did not become ready; log: $LOG" >&2
  exit 1
}

describe_machine
echo "soak: ${DURATION}s in ${SLICE}s slices, mixed workload at $RATE requests/s, faults=$FAULTS"
"${CARGO_TARGET_DIR:-target}"/release/chirp-seed --users "$USERS" --tweets "$TWEETS" >/dev/null 2>&1
start_chirp

faults=()
faults+=(crash)
[[ "${CHIRP_DATABASE_URL:-}" == postgres* ]] && faults+=(database)
[ -n "${CHIRP_REDIS_URL:-}" ] && faults+=(cache)

inject() {
  case $1 in
    crash)
      kill -9 "$CHIRP"; wait "$CHIRP" 2>/dev/null || true
      start_chirp ;;
    database)
      psql "$CHIRP_DATABASE_URL" -qAtc \
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()" >/dev/null ;;
    cache)
      redis-cli -u "$CHIRP_REDIS_URL" CLIENT KILL TYPE normal >/dev/null ;;
  esac
}

printf '%-6s %-9s %9s %7s %8s %8s %9s %9s\n' slice fault requests errors "p50 ms" "p99 ms" "RSS MiB" "peak MiB"
slices=$((DURATION / SLICE))
for i in $(seq "$slices"); do
  fault=none
  if [ "$FAULTS" = 1 ] && [ "$i" -gt 1 ]; then fault=${faults[$(((i - 2) % ${#faults[@]}))]}; fi
  "${CARGO_TARGET_DIR:-target}"/release/chirp-load run --scenario mixed --rate "$RATE" --connections 1000 \
    --duration "${SLICE}s" --warmup 0s --json >"$DATA/slice.out" 2>/dev/null &
  load=$!
  if [ "$fault" != none ]; then
    sleep $((SLICE / 2))
    inject "$fault" # in the middle of the slice, under load
  fi
  wait "$load" || true
  out=$(sed -n 's/^JSON //p' "$DATA/slice.out")
  rss=$(($(awk '/VmRSS/ {print $2}' /proc/$CHIRP/status) / 1024))
  peak=$(($(awk '/VmHWM/ {print $2}' /proc/$CHIRP/status) / 1024))
  python3 -c 'import json,sys; a=json.loads(sys.argv[1] or "{}").get("all") or {}; print("%-6s %-9s %9d %7d %8.2f %8.2f %9s %9s" % (sys.argv[2], sys.argv[3], a.get("requests",0), a.get("errors",0), a.get("p50_ms",0), a.get("p99_ms",0), sys.argv[4], sys.argv[5]))' \
    "$out" "$i" "$fault" "$rss" "$peak"
done
echo "chirp log: warnings and errors"
grep -cE " (WARN|ERROR) " "$LOG" || true
