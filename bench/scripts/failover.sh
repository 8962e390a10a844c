#!/usr/bin/env bash
# failover.sh: the publisher-kill failover, CYCLES times on one server, with the switch gap
# of each cycle.
#
# Usage:  bench/scripts/failover.sh
#
# One release server, one stream `match`:
#   PUT /streams/match {"inputs":[{"url":"publish://","priority":0},
#                                 {"url":"udp://127.0.0.1:P","priority":1}],
#                       "protocols":{"hls":true,"rtmp":true}}
# an ffmpeg UDP sender on input 1 (hot standby) and an ffmpeg RTMP publisher on input 0
# (bench/README's clip: 720p30, GOP 60, 2 B-frames, AAC). Each cycle:
#   1. kills the publisher (SIGKILL) and polls GET /streams/match every 50 ms until
#      `runtime.active_input_priority` is 1: the detection time, as a client sees it;
#   2. reads the newest `error` entry of `runtime.switches`: its `gap_ms` is the server's
#      measured output gap (last frame of the publisher to the backup's commit);
#   3. publishes again and waits for the failback to input 0 (12 s hold): the failback time.
# Prints a table row per cycle (stderr) and the median and max of each measure (stdout,
# markdown, for bench/RESULTS.md).
#
# Environment (defaults): CYCLES=20 CLIP_SECONDS=60 KEEP= (set to keep the temp dir)
#   CARGO_TARGET_DIR (target/), SERVER_BIN=PATH (skip the build).
#
# Needs: cargo, ffmpeg, curl, jq, a Linux /proc. Takes about CYCLES × 16 s.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CYCLES="${CYCLES:-20}"
CLIP_SECONDS="${CLIP_SECONDS:-60}"

SCRIPT=failover.sh
# shellcheck source=lib.sh
. "$ROOT/bench/scripts/lib.sh"

require_tools cargo ffmpeg curl jq

ensure_binary
ensure_clip mp4 "$CLIP_SECONDS"
PUBLISH_CLIP=$CLIP
ensure_clip ts "$CLIP_SECONDS"
UDP_CLIP=$CLIP

now_ms() { date +%s%3N; }

runtime() { curl -s --max-time 2 "$API/streams/match" | jq -c '.data.runtime'; }

active() { runtime | jq -r '.active_input_priority // "none"'; }

# Waits until input $1 is active, at most $2 s; prints the milliseconds it took.
wait_active() {
    local want=$1 limit=$2 t0 deadline
    t0=$(now_ms)
    deadline=$((SECONDS + limit))
    until [ "$(active)" = "$want" ]; do
        kill -0 "$SERVER" 2>/dev/null || die "the server exited"
        [ "$SECONDS" -lt "$deadline" ] || die "input $want not active within $limit s: $(runtime)"
        sleep 0.05
    done
    echo $(($(now_ms) - t0))
}

start_publisher() {
    ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$PUBLISH_CLIP" \
        -c copy -f flv "rtmp://127.0.0.1:$RTMP/live/match" </dev/null >/dev/null 2>&1 &
    PUBLISHER=$!
    PIDS+=("$PUBLISHER")
}

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tributary-failover.XXXXXX")
HTTP=$(free_port)
RTMP=$(free_port)
UDP=$(free_port)
API="http://127.0.0.1:$HTTP"
"$BIN" --data-dir "$RUN_DIR/data" --http "127.0.0.1:$HTTP" --rtmp "127.0.0.1:$RTMP" \
    --srt off --rtsp off >"$RUN_DIR/server.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
wait_http_200 "$API/healthz" 15 "$SERVER" "start"

code=$(curl -s -o "$RUN_DIR/create.json" -w '%{http_code}' --max-time 10 -X PUT "$API/streams/match" \
    -d "{\"inputs\":[{\"url\":\"publish://\",\"priority\":0},{\"url\":\"udp://127.0.0.1:$UDP\",\"priority\":1}],\"protocols\":{\"hls\":true,\"rtmp\":true}}" || true)
[ "$code" = 201 ] || die "creating the stream answered HTTP $code: $(cat "$RUN_DIR/create.json")"
ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$UDP_CLIP" -c copy \
    -f mpegts "udp://127.0.0.1:$UDP?pkt_size=1316" </dev/null >/dev/null 2>&1 &
PIDS+=("$!")
wait_active 1 20 >/dev/null
start_publisher
wait_active 0 20 >/dev/null
wait_http_200 "$API/match/index.m3u8" 30 "$SERVER" "HLS"
sleep 5

echo "== $(machine), CYCLES=$CYCLES, load now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "| cycle | detection ms | gap_ms | failback ms |" >&2
DETECT=() GAP=() FAILBACK=()
for cycle in $(seq 1 "$CYCLES"); do
    kill -9 "$PUBLISHER"
    wait "$PUBLISHER" 2>/dev/null || true
    detect=$(wait_active 1 10)
    sleep 0.5
    gap=$(runtime | jq -r '[.switches[] | select(.reason == "error")][0].gap_ms // "none"')
    [ "$gap" != none ] || die "cycle $cycle: no gap_ms on the error switch: $(runtime)"
    sleep 2
    start_publisher
    failback=$(wait_active 0 30)
    echo "| $cycle | $detect | $gap | $failback |" >&2
    DETECT+=("$detect") GAP+=("$gap") FAILBACK+=("$failback")
    sleep 2
done

max() { sort -g | tail -1; }
printf '| measure (%s cycles) | median (min-max) | max |\n| --- | ---: | ---: |\n' "$CYCLES"
printf '| kill to backup active, client-side ms | %s | %s |\n' \
    "$(printf '%s\n' "${DETECT[@]}" | summary 0)" "$(printf '%s\n' "${DETECT[@]}" | max)"
printf '| switch gap (`gap_ms`, server-measured) | %s | %s |\n' \
    "$(printf '%s\n' "${GAP[@]}" | summary 0)" "$(printf '%s\n' "${GAP[@]}" | max)"
printf '| republish to failback ms (12 s hold) | %s | %s |\n' \
    "$(printf '%s\n' "${FAILBACK[@]}" | summary 0)" "$(printf '%s\n' "${FAILBACK[@]}" | max)"
