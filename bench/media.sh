#!/usr/bin/env bash
# Timed uploads (not a load test) of a JPEG, an animated GIF and a short video,
# one after another, against a chirp binary; prints the median per file, and
# how long after the last answer its URL serves (a gifv's MP4 is made after the answer).
#   bash bench/media.sh target/debug/chirp [port] [label]     (N=10, FILES="photo.jpg anim.gif clip.mp4")
# Needs ffmpeg (to make the files), curl and python3. Figures: docs/BENCHMARKS.md.
set -euo pipefail
BIN=$(realpath "$1"); PORT=${2:-18730}; LABEL=${3:-chirp}; N=${N:-10}
W=$(mktemp -d)
D=$W/data
mkdir -p "$D"
cd "$W"
ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=1024x768 -frames:v 1 -q:v 4 photo.jpg
ffmpeg -loglevel error -y -f lavfi -i testsrc2=duration=3:size=320x240:rate=10 anim.gif
ffmpeg -loglevel error -y -f lavfi -i testsrc2=duration=5:size=640x360:rate=25 -f lavfi -i sine=duration=5 \
  -shortest -pix_fmt yuv420p clip.mp4
CHIRP_DATA_DIR=$D CHIRP_LISTEN=127.0.0.1:$PORT CHIRP_AUTH_RATE_LIMIT=0 CHIRP_LOG=info "$BIN" >"$W/log" 2>&1 &
PID=$!
trap 'kill $PID; wait $PID 2>/dev/null; rm -rf "$W"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
API=http://127.0.0.1:$PORT/api/v1
curl -s -X POST "$API/register" -H 'content-type: application/json' \
  -d '{"email":"b@example.com","username":"bench","name":"B","password":"correct horse battery"}' >/dev/null
sleep 2
CODE=$(grep -o 'code[^0-9]*[0-9]\{6\}' "$W/log" | grep -o '[0-9]\{6\}' | tail -1)
TOKEN=$(curl -s -X POST "$API/verify-register" -H 'content-type: application/json' \
  -d "{\"email\":\"b@example.com\",\"code\":\"$CODE\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
for f in ${FILES:-photo.jpg anim.gif clip.mp4}; do
  times=()
  started=$(date +%s.%N)
  for _ in $(seq "$N"); do
    times+=("$(curl -s -o "$W/last.json" -w '%{time_total}' -X POST "$API/tweet" -H "authorization: Bearer $TOKEN" -F "media=@$f")")
  done
  answered=$(date +%s.%N)
  # Everything served: the last upload's URL answers (a gifv's MP4 is made after the answer).
  url=$(grep -o '"url":"[^"]*"' "$W/last.json" | head -1 | cut -d'"' -f4)
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT$url")" = 200 ]; do sleep 0.02; done
  served=$(date +%s.%N)
  kind=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["media"][0]; print(m["kind"], m["content_type"])' "$W/last.json")
  printf '%s %s (%s): %s\n' "$LABEL" "$f" "$kind" "$(printf '%s\n' "${times[@]}" | sort -n \
    | awk '{a[NR]=$1} END {printf "median %.3f s, min %.3f s, max %.3f s", a[int((NR+1)/2)], a[1], a[NR]}')"
  printf '%s %s: %d uploads answered in %.2f s; the last one served %.2f s after its answer\n' "$LABEL" "$f" "$N" \
    "$(echo "$answered - $started" | bc)" "$(echo "$served - $answered" | bc)"
done
