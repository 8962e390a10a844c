#!/usr/bin/env bash
# llhls-latency.sh: glass-to-glass latency of HLS in a real browser player, Tributary's LL-HLS
# and plain HLS side by side with nginx-rtmp's HLS (issue 16: "glass-to-glass latency measured
# with a wall-clock-stamped publisher and recorded"; goal <= 1.5 s with 0.5 s parts, 1 s GOP).
#
# Usage:  bench/scripts/llhls-latency.sh
#
# For each run (RUNS, each on a fresh server) and each of SERVERS:
#   - nginx: ../shared/bench's nginx-rtmp peer as it runs (HLS-TS, 2 s fragments), hls.js with
#     its defaults;
#   - tributary-hls: the release binary on its defaults (HLS-TS, 2 s segments), hls.js with its
#     defaults;
#   - tributary-llhls: the release binary with fMP4 segments of 2 s, LL-HLS on with 0.5 s parts
#     (TRIBUTARY_PUBLISHER__HLS__*), hls.js in low-latency mode (tests/browser/play.mjs
#     --low-latency: lowLatencyMode, catch-up rate 1.5).
#   1. ffmpeg makes a 720p30 picture (testsrc2) and, as each frame is made, paints the wall clock
#      into it (20 blocks of 48 px at the top left, bit i of the time in ms modulo 2^20), encodes
#      it with x264 veryfast, tune zerolatency (no lookahead, no B-frames), a keyframe every
#      second, AAC audio, and publishes it over RTMP in real time: a camera and an encoder;
#   2. tests/browser/play.mjs plays the HLS URL in Debian's headless Chromium for DURATION s
#      with --frame-clock 48: at every 5th frame on screen it reads the painted time back and
#      subtracts it from the wall time the frame is shown. Capture, encoder, RTMP, server,
#      HTTP, player buffer and decoder are all in the figure; the first 5 s of playback are
#      left out (players settle on their target).
# Prints, per server: the median of the runs' median glass-to-glass latency (ms) with its
# min-max, the median p90, and, for hls.js in low-latency mode, its distance to the live edge.
#
# Environment (defaults): RUNS=3 DURATION=30 SERVERS="nginx tributary-hls tributary-llhls"
#   CARGO_TARGET_DIR (target/), SERVER_BIN=PATH (skip the build), KEEP (keep temp dirs).
#
# Needs: cargo, ffmpeg (libx264), curl, node and npm, Debian's chromium (scripts/test installs
# them), python3; nginx + libnginx-mod-rtmp (the peer script installs them). Loopback only.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUNS="${RUNS:-3}"
DURATION="${DURATION:-30}"
SERVERS="${SERVERS:-nginx tributary-hls tributary-llhls}"
BLOCK=48

SCRIPT=llhls-latency.sh
# shellcheck source=lib.sh
. "$ROOT/bench/scripts/lib.sh"

HINT="scripts/test installs ffmpeg, node and chromium" require_tools cargo ffmpeg curl node npm python3
[ -x /usr/bin/chromium ] || die "no /usr/bin/chromium (apt-get install chromium)"
PLAYER="$ROOT/tests/browser/play.mjs"
[ -d "$ROOT/tests/browser/node_modules/hls.js" ] || npm ci --silent --prefix "$ROOT/tests/browser" >&2

ensure_binary
ulimit -n 65536 2>/dev/null || true

# Publishes the clock-painted camera picture to PLAY_URL until killed.
start_clock_publisher() {
    local strip=$((BLOCK * 20))
    ffmpeg -hide_banner -nostdin -loglevel error -re \
        -f lavfi -i testsrc2=size=1280x720:rate=30 \
        -f lavfi -i sine=frequency=440:sample_rate=48000 \
        -filter_complex "[0:v]settb=1/1000,setpts='RTCTIME/1000',split[pic][bits];\
[bits]crop=$strip:$BLOCK:0:0,geq=lum='16+219*mod(floor(mod(floor(T*1000+0.5),1048576)/pow(2,floor(X/$BLOCK))),2)':cb=128:cr=128[clock];\
[pic][clock]overlay=0:0,setpts=N/30/TB[v]" \
        -map '[v]' -map 1:a -c:v libx264 -preset veryfast -tune zerolatency -g 30 -keyint_min 30 \
        -sc_threshold 0 -b:v 2500k -maxrate 2500k -bufsize 2500k -pix_fmt yuv420p \
        -c:a aac -b:a 128k -ac 2 -f flv "$PLAY_URL" </dev/null >"$RUN_DIR/publisher.log" 2>&1 &
    PIDS+=("$!")
    wait_http_200 "$PLAYLIST" 20 "$SERVER_PID" "HLS of the clock publish"
}

# One run of SERVER; appends "GLASS_MEDIAN GLASS_P90 EDGE_MEDIAN" (ms, ms, s or -) to $2.
run_one() {
    local server=$1 out=$2 extra=()
    RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tributary-llhls-latency.XXXXXX")
    chmod 755 "$RUN_DIR" # nginx's worker (www-data) reads its HLS files under it
    case "$server" in
        nginx) start_server nginx ;;
        tributary-hls) start_server tributary ;;
        tributary-llhls)
            TRIBUTARY_PUBLISHER__HLS__SEGMENT_FORMAT=fmp4 TRIBUTARY_PUBLISHER__HLS__LOW_LATENCY=true \
                TRIBUTARY_PUBLISHER__HLS__PART_SEC=0.5 start_server tributary
            extra=(--low-latency)
            ;;
        *) die "unknown server $server" ;;
    esac
    start_clock_publisher
    sleep 4 # a few segments in the playlist, as a viewer joining a running stream finds it
    node "$PLAYER" --url "$PLAYLIST" --kind hls --seconds "$DURATION" --frame-clock "$BLOCK" \
        "${extra[@]}" >"$RUN_DIR/play.json" 2>"$RUN_DIR/play.err" ||
        die "$server: the player failed: $(head -c 600 "$RUN_DIR/play.json") $(tail -5 "$RUN_DIR/play.err")"
    kill -0 "$SERVER_PID" 2>/dev/null || die "$server died"
    python3 - "$RUN_DIR/play.json" >>"$out" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
g = r["glass"]
edge = (r.get("latency") or {}).get("edge") or {}
print(g["median"], g["p90"], edge.get("median", "-"))
EOF
    cleanup
}

echo "== $(machine), RUNS=$RUNS DURATION=${DURATION}s, load now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
results=$(mktemp "${TMPDIR:-/tmp}/tributary-llhls-results.XXXXXX")
for run in $(seq 1 "$RUNS"); do
    for server in $SERVERS; do
        echo "== run $run/$RUNS: $server" >&2
        run_one "$server" "$results.$server"
    done
done
printf '| server | player | glass-to-glass median ms | p90 ms | hls.js distance to the live edge s |\n'
printf '| --- | --- | ---: | ---: | ---: |\n'
for server in $SERVERS; do
    player="hls.js"
    [ "$server" = tributary-llhls ] && player="hls.js low-latency"
    printf '| %s | %s | %s | %s | %s |\n' "$server" "$player" \
        "$(cut -d' ' -f1 "$results.$server" | summary 0)" \
        "$(cut -d' ' -f2 "$results.$server" | summary 0)" \
        "$(if [ "$server" = tributary-llhls ]; then cut -d' ' -f3 "$results.$server" | summary 2; else echo -; fi)"
done
rm -f "$results" "$results".*
