#!/usr/bin/env bash
# The CPU time one request of a scenario costs, by process: chirp, PostgreSQL
# (all its backends), Redis, the Kafka broker, the load tool. On a shared,
# noisy machine a scenario's rate moves with everything else running; the
# CPU its requests take moves much less, so this tells a change that saves
# work apart from noise where an A/B of rates cannot.
#
#   CHIRP_DATABASE_URL=postgres://postgres@127.0.0.1:5432/chirp_cpu CHIRP_REDIS_URL=redis://127.0.0.1:6379 \
#     CHIRP_KAFKA_BROKERS=127.0.0.1:9092 SEED_FROM=chirp_seeded BINS="/tmp/before /tmp/after" \
#     SCENARIOS="likes tweet-text" ROUNDS=2 bash bench/cpu_per_request.sh
#
# Each run starts from the data as seeded (SEED_FROM: a SQLite data
# directory or a PostgreSQL template, as in ab.sh), measures each process's
# idle CPU for IDLE seconds (tansu's consumers poll even when idle), runs the
# scenario for DURATION, then waits until chirp's background work is done
# (the outbox empty and the fan-out idle, SETTLE seconds at most). The
# background work counts: a like's notification and a tweet's fan-out are
# part of what the request costs. Idle CPU over the same time is taken off.
# `settled`: seconds from the load's start until then (DURATION, plus how
# long the background work ran on after the load).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
SCENARIOS=${SCENARIOS:-likes}
ROUNDS=${ROUNDS:-1}
IDLE=${IDLE:-5}
SETTLE=${SETTLE:-60}
read -ra BUILDS <<<"${BINS:?BINS: the build directories to compare}"
TOOLS=$(realpath "${BUILDS[0]}")
: "${SEED_FROM:?SEED_FROM: a seeded data directory or PostgreSQL template}"
. bench/backends.sh
prepare_backends cpu
CHIRP=
cleanup() {
  if [ -n "$CHIRP" ]; then kill "$CHIRP" 2>/dev/null || true; wait "$CHIRP" 2>/dev/null || true; fi
  rm -rf "$DATA"
}
trap cleanup EXIT
TICK=$(getconf CLK_TCK)

# CPU ticks (user + system, and that of children that ended: PostgreSQL's
# backends that closed) of every process whose command line matches.
ticks() {
  local total=0 pid
  for pid in $(pgrep -f "$1" || true); do
    if [ -r "/proc/$pid/stat" ]; then
      total=$((total + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    fi
  done
  echo "$total"
}
GROUPS_=(chirp postgres redis tansu)
snapshot() {
  printf '%s %s %s %s' "$(awk '{ print $14 + $15 }' "/proc/$CHIRP/stat")" "$(ticks '^(/usr/lib/postgresql/.*/postgres|postgres: )')" \
    "$(ticks '^redis-server')" "$(ticks 'tansu broker')"
}
sum() { local t=0 x; for x in "$@"; do t=$((t + x)); done; echo "$t"; }

describe_machine
printf '%-16s %-12s %8s %8s %8s  %s\n' build scenario requests "req/s" "settled" "CPU us a request: chirp postgres redis tansu load (idle per s: chirp postgres redis tansu)"
for round in $(seq "$ROUNDS"); do
  for build in "${BUILDS[@]}"; do
    for scenario in $SCENARIOS; do
      restore_seed "$SEED_FROM" cpu
      "$build"/chirp >>"$LOG" 2>&1 &
      CHIRP=$!
      wait_for_chirp
      sleep 2
      read -ra i0 <<<"$(snapshot)"
      sleep "$IDLE"
      read -ra i1 <<<"$(snapshot)"
      read -ra s0 <<<"$(snapshot)"
      started=$(date +%s.%N)
      out=$(/usr/bin/time -f 'load_cpu %U %S' "$TOOLS"/chirp-load run --scenario "$scenario" --duration "$DURATION" \
        --warmup 0s --connections "$CONNECTIONS" 2>&1)
      # Settled: two seconds in a row in which the four together used no
      # more than when idle, plus a tenth of a core.
      idle_ticks=$(($(sum "${i1[@]}") - $(sum "${i0[@]}")))
      quiet=0
      for _ in $(seq "$SETTLE"); do
        read -ra a <<<"$(snapshot)"
        sleep 1
        read -ra b <<<"$(snapshot)"
        if (($(sum "${b[@]}") - $(sum "${a[@]}") <= idle_ticks / IDLE + TICK / 10)); then quiet=$((quiet + 1)); else quiet=0; fi
        if ((quiet >= 2)); then break; fi
      done
      read -ra s1 <<<"$(snapshot)"
      elapsed=$(echo "$(date +%s.%N) - $started" | bc)
      requests=$(awk '$1 == "all" { print $2 }' <<<"$out")
      rate=$(awk '$1 == "all" { print $4 }' <<<"$out")
      load=$(awk '/^load_cpu/ { print $2 + $3 }' <<<"$out")
      line=""
      idle_line=""
      for k in "${!GROUPS_[@]}"; do
        idle_rate=$(echo "(${i1[$k]} - ${i0[$k]}) / $IDLE" | bc -l)
        used=$(echo "(${s1[$k]} - ${s0[$k]}) - $idle_rate * $elapsed" | bc -l)
        line+=$(printf ' %7.1f' "$(echo "$used / $TICK * 1000000 / $requests" | bc -l)")
        idle_line+=$(printf ' %5.1f%%' "$(echo "$idle_rate / $TICK * 100" | bc -l)")
      done
      line+=$(printf ' %7.1f' "$(echo "$load * 1000000 / $requests" | bc -l)")
      printf '%-16s %-12s %8s %8s %7.0fs  %s  (%s)\n' "$(basename "$build")#$round" "$scenario" "$requests" "$rate" "$elapsed" \
        "$line" "$idle_line"
      kill "$CHIRP"
      wait "$CHIRP" || true
      CHIRP=
    done
  done
done
