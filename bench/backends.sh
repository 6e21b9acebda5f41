# Sourced by bench/run.sh and bench/soak.sh: one fresh data set on the
# backends the CHIRP_* variables name, and a description of the machine.

# prepare_backends LABEL: a new data directory ($DATA, with chirp's log at
# $LOG), the PostgreSQL database of CHIRP_DATABASE_URL dropped and created
# again, a Redis prefix and a Kafka topic and group of their own, and the
# settings chirp, chirp-seed and chirp-load share (chirp on 127.0.0.1:18080).
prepare_backends() {
  local label=$1
  DATA=$(mktemp -d)
  LOG=$DATA/chirp.log
  if [[ "${CHIRP_DATABASE_URL:-}" == postgres* ]]; then
    local db=${CHIRP_DATABASE_URL##*/}
    psql "${CHIRP_DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
  fi
  prepare_backends_names "$label"
  export_chirp_settings
}

# export_chirp_settings: what chirp, chirp-seed and chirp-load share ($DATA
# as the data directory, chirp on 127.0.0.1:18080).
export_chirp_settings() {
  export CHIRP_DATA_DIR=$DATA CHIRP_LISTEN=127.0.0.1:18080 CHIRP_AUTH_RATE_LIMIT=0 CHIRP_LOG=info,tower_http=warn
}

# prepare_backends_names LABEL: a Redis prefix, Kafka topics and groups of their own.
prepare_backends_names() {
  local label=$1
  if [ -n "${CHIRP_REDIS_URL:-}" ]; then export CHIRP_REDIS_PREFIX="$label$RANDOM:"; fi
  if [ -n "${CHIRP_KAFKA_BROKERS:-}" ]; then
    export CHIRP_KAFKA_TOPIC="chirp.$label.$RANDOM" CHIRP_KAFKA_GROUP="$label$RANDOM"
    export CHIRP_KAFKA_TIMELINE_TOPIC="chirp.timeline.$label.$RANDOM" CHIRP_KAFKA_FANOUT_GROUP="fanout$label$RANDOM"
  fi
}

# restore_seed SEED LABEL: the data as seeded back (SEED: the template of
# the PostgreSQL database CHIRP_DATABASE_URL names, or else a data directory
# to copy into $DATA), and a Redis prefix and Kafka names of its own.
restore_seed() {
  local seed=$1 label=$2
  if [[ "${CHIRP_DATABASE_URL:-}" == postgres* ]]; then
    local db=${CHIRP_DATABASE_URL##*/}
    psql "${CHIRP_DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db TEMPLATE $seed"
  else
    # chirp.db and the search index chirp.search.db, with their WALs.
    find "$DATA" -maxdepth 1 -name 'chirp.*db*' -delete
    cp -a "$seed"/. "$DATA"/
  fi
  if [ -n "${FRESH_TANSU:-}" ]; then fresh_tansu; fi
  prepare_backends_names "$label"
}

# fresh_tansu: tansu on 127.0.0.1:9092 stopped and started again on an empty
# database in $FRESH_TANSU (a directory). tansu 0.6's sqlite engine keeps
# every record, and its cost grows with them: after half an hour of runs
# (340 MB) it took 35% of this machine during text tweets, and librdkafka's
# producer thread spun another 16% waiting for its answers, against 13% and
# none on an empty one. Set FRESH_TANSU so that each run starts level.
fresh_tansu() {
  pkill -f "tansu broker" || true
  while (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null; do sleep 0.2; done
  mkdir -p "$FRESH_TANSU"
  rm -f "$FRESH_TANSU"/tansu.db*
  (cd "$FRESH_TANSU" && nohup tansu broker --listener-url tcp://127.0.0.1:9092 \
    --advertised-listener-url tcp://127.0.0.1:9092 --storage-engine sqlite://tansu.db \
    >>"$FRESH_TANSU/tansu.log" 2>&1 </dev/null &)
  for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null && return; sleep 0.1; done
  echo "tansu did not come back on 127.0.0.1:9092" >&2
  return 1
}

# wait_for_chirp: until chirp on 127.0.0.1:18080 answers /healthz (30 s at most).
wait_for_chirp() {
  for _ in $(seq 300); do curl -sf 127.0.0.1:18080/healthz >/dev/null && return; sleep 0.1; done
}

# peak_rss_mib PID: the process's peak resident set so far, in MiB.
peak_rss_mib() {
  echo $(($(awk '/VmHWM/ {print $2}' "/proc/$1/status") / 1024))
}

describe_machine() {
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(lscpu | sed -n 's/^Model name: *//p'), $(uname -r)"
  echo "backend: database=$([ -n "${CHIRP_DATABASE_URL:-}" ] && echo postgres || echo sqlite)" \
    "cache=$([ -n "${CHIRP_REDIS_URL:-}" ] && echo redis || echo memory)" \
    "broker=$([ -n "${CHIRP_KAFKA_BROKERS:-}" ] && echo kafka || echo memory)"
}
