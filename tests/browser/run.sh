#!/usr/bin/env bash
# The web client's end-to-end journeys in a real browser: builds chirp, starts
# it on the embedded defaults (a temp data dir, a free port, no auth rate
# limit), checks that the committed web/dist/ bundle is what its sources
# build, makes media fixtures with ffmpeg, and runs journeys.mjs with
# playwright-core driving Debian's Chromium (/usr/bin/chromium).
#   SCREENSHOTS=dir  also saves the README's screenshots (docs/screenshots by default; "" for none)
#   CHIRP_BIN=path   a chirp binary to use instead of building one (`cargo build --bin chirp`)
#   SCRIPT=file      another script to run against that server (loadtime.mjs: where the first load's time goes)
set -euo pipefail
cd "$(dirname "$0")"
HERE=$(pwd)
ROOT=$(cd ../.. && pwd)

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "error: $CHROMIUM is missing (apt-get install chromium)" >&2; exit 1; }
command -v ffmpeg >/dev/null || { echo "error: ffmpeg is missing (apt-get install ffmpeg)" >&2; exit 1; }
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/axe-core ]; then
  npm ci --no-audit --no-fund
fi

# The page runs web/dist/app.js, built from web/*.js and committed: a stale
# bundle would test old code (web/README.md says how to rebuild it).
(cd "$ROOT/web/build" && { [ -d node_modules/esbuild ] || npm ci --no-audit --no-fund; } && node build.mjs --check)

if [ -z "${CHIRP_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --bin chirp)
  CHIRP_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/chirp
fi

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

FIXTURES=$WORK/fixtures
mkdir -p "$FIXTURES"
ffmpeg -loglevel error -f lavfi -i testsrc=size=640x400 -frames:v 1 "$FIXTURES/image.png"
ffmpeg -loglevel error -f lavfi -i smptehdbars=size=640x400 -frames:v 1 "$FIXTURES/image2.png"
ffmpeg -loglevel error -f lavfi -i testsrc=duration=2:size=320x240:rate=15 -pix_fmt yuv420p -c:v libx264 "$FIXTURES/video.mp4" \
  || ffmpeg -loglevel error -f lavfi -i testsrc=duration=2:size=320x240:rate=15 -c:v libvpx "$FIXTURES/video.webm"
[ -f "$FIXTURES/video.mp4" ] || mv "$FIXTURES/video.webm" "$FIXTURES/video.mp4"
printf 'this is text, whatever its name says\n' > "$FIXTURES/not-an-image.png"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LOG=$WORK/chirp.log
CHIRP_LISTEN=127.0.0.1:$PORT CHIRP_DATA_DIR=$WORK/data CHIRP_AUTH_RATE_LIMIT=0 CHIRP_LOG_FORMAT=json CHIRP_LOG=info \
  "$CHIRP_BIN" >"$LOG" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  if curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$LOG" >&2; echo "error: chirp exited" >&2; exit 1; fi
  sleep 0.2
done

mkdir -p "$HERE/out"
status=0
CHIRP_URL=http://127.0.0.1:$PORT CHIRP_LOG_FILE=$LOG FIXTURES=$FIXTURES CHROMIUM=$CHROMIUM \
  SCREENSHOTS=${SCREENSHOTS-$ROOT/docs/screenshots} METRICS_FILE=$HERE/out/metrics.json \
  node "${SCRIPT:-journeys.mjs}" || status=$?
if [ "$status" != 0 ]; then
  echo "--- last lines of the chirp log" >&2
  tail -n 40 "$LOG" >&2
fi
exit "$status"
