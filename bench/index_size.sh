#!/usr/bin/env bash
# How the search indexes grow: seeds fresh databases of TWEETS_LIST sizes
# (default 100000 and 1000000 tweets; USERS users each) and prints the size
# of each search structure, in MiB and in bytes per tweet (or per user).
#
#   bash bench/index_size.sh                                  # SQLite (needs the sqlite3 CLI)
#   PG=postgres://postgres@127.0.0.1:5432 bash bench/index_size.sh   # PostgreSQL
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-100000}
TWEETS_LIST=${TWEETS_LIST:-100000 1000000}
cargo build --release --bin chirp-seed >/dev/null 2>&1
printf '%-10s %-9s %-28s %10s %14s\n' database tweets structure MiB bytes/row
for tweets in $TWEETS_LIST; do
  if [ -n "${PG:-}" ]; then
    db=chirp_index_$tweets
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" 2>/dev/null
    CHIRP_DATABASE_URL=$PG/$db "${CARGO_TARGET_DIR:-target}"/release/chirp-seed --users "$USERS" --tweets "$tweets" >/dev/null 2>&1
    psql "$PG/$db" -Atc "VACUUM ANALYZE"
    psql "$PG/$db" -AtF' ' -c "
      SELECT 'tweets_search(GIN)', pg_relation_size('tweets_search'), $tweets
      UNION ALL SELECT 'tweets.search_vector(column)', sum(pg_column_size(search_vector)), $tweets FROM tweets
      UNION ALL SELECT 'tweets.search_terms(column)', sum(pg_column_size(search_terms)), $tweets FROM tweets
      UNION ALL SELECT 'users_username_trgm(GIN)', pg_relation_size('users_username_trgm'), $USERS" |
      while read -r name bytes rows; do
        awk -v d=postgres -v t="$tweets" -v n="$name" -v b="$bytes" -v r="$rows" 'BEGIN { printf "%-10s %-9s %-28s %10.1f %14.1f\n", d, t, n, b / 1048576, b / r }'
      done
    psql "$PG/postgres" -qc "DROP DATABASE $db WITH (FORCE)"
  else
    dir=$(mktemp -d)
    CHIRP_DATA_DIR=$dir "${CARGO_TARGET_DIR:-target}"/release/chirp-seed --users "$USERS" --tweets "$tweets" >/dev/null 2>&1
    sqlite3 "$dir/chirp.db" "
      ATTACH '$dir/chirp.search.db' AS search;
      SELECT 'tweet_search(FTS5, own file)', sum(pgsize), $tweets FROM dbstat('search') WHERE name LIKE 'tweet_search%'
      UNION ALL SELECT 'tweets.search_terms(column)', sum(length(search_terms)), $tweets FROM tweets
      UNION ALL SELECT 'user_search(FTS5-trigram)', sum(pgsize), $USERS FROM dbstat WHERE name LIKE 'user_search%';" |
      tr '|' ' ' | while read -r name bytes rows; do
        awk -v d=sqlite -v t="$tweets" -v n="$name" -v b="$bytes" -v r="$rows" 'BEGIN { printf "%-10s %-9s %-28s %10.1f %14.1f\n", d, t, n, b / 1048576, b / r }'
      done
    rm -rf "$dir"
  fi
done
