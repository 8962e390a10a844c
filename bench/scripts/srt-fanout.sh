#!/usr/bin/env bash
# srt-fanout.sh: N SRT players of one stream from Tributary, side by side with the SRT
# reference implementation (`srt-live-transmit`, Debian's srt-tools) relaying the same bytes
# to the same N players.
#
# Usage:  bench/scripts/srt-fanout.sh [N ...]          (default: 50)
#
# The same MPEG-TS reaches both sides over UDP (1316-byte datagrams, 7 x 188), from one
# publisher, not measured: ffmpeg -re -stream_loop -1 -i clip.mp4 -c copy -f mpegts.
#   tributary: the release binary, one stream `test` whose input is udp://127.0.0.1:P, SRT
#     play on (listener on a free port, latency 120 ms); N players
#     `srt-live-transmit srt://…?streamid=play:live/test file://con > /dev/null`.
#   reference: srt-live-transmit relays one UDP input to one SRT listener and caller at a time,
#     so N of them, `srt-live-transmit udp://:P_k srt://:Q_k?mode=listener`, each fed by the
#     publisher (ffmpeg's tee muxer, one UDP copy per relay); the same N players, each calling
#     its relay. Its cost is the reference implementation's cost for the same bytes: what
#     libsrt spends to send one stream to N receivers.
# For each N and each side, RUNS times, alternating: WARMUP s, then WINDOW s of CPU seconds of
# the server (or the sum over the N relays) and its peak RSS (VmHWM, summed); every player
# must still be playing and have received bytes in the window.
#
# Environment (defaults): RUNS=3 WARMUP=20 WINDOW=30 CLIP_SECONDS=60 SIDES="tributary
#   reference", CARGO_TARGET_DIR (target/), SERVER_BIN=PATH (skip the build).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUNS="${RUNS:-3}"
WARMUP="${WARMUP:-20}"
WINDOW="${WINDOW:-30}"
CLIP_SECONDS="${CLIP_SECONDS:-60}"
SIDES="${SIDES:-tributary reference}"
COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(50)

SCRIPT=srt-fanout.sh
WITH_SRT=1
# shellcheck source=lib.sh
. "$ROOT/bench/scripts/lib.sh"

HINT="scripts/test installs ffmpeg and srt-tools" require_tools cargo ffmpeg curl srt-live-transmit

ensure_binary
ensure_clip mp4 "$CLIP_SECONDS"
ulimit -n 65536 2>/dev/null || true

# Starts the publisher: the clip in real time as MPEG-TS over UDP to each port given.
publish() {
    local outputs="" port
    for port in "$@"; do
        outputs="$outputs${outputs:+|}[f=mpegts]udp://127.0.0.1:$port?pkt_size=1316"
    done
    ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$CLIP" -c copy \
        -map 0 -f tee "$outputs" </dev/null >"$RUN_DIR/publisher.log" 2>&1 &
    PIDS+=("$!")
}

# Starts N players of the SRT URLs given (the K-th URL for player K; one URL for all when only
# one is given), each writing what it receives to RUN_DIR/play-K.ts, whose growth over the
# window proves it played.
PLAYERS=()
play() {
    local n=$1 k url
    shift
    for k in $(seq 1 "$n"); do
        url=$1
        [ $# -eq 1 ] || url=${*:$k:1}
        srt-live-transmit -q "$url" file://con >"$RUN_DIR/play-$k.ts" 2>>"$RUN_DIR/players.log" &
        PLAYERS+=("$!")
        PIDS+=("$!")
        [ $((k % 25)) -ne 0 ] || sleep 0.5
    done
}

# Every player alive and grown since the sizes in SIZES; dies naming how many were not.
check_players() {
    local what=$1 k alive=0 grown=0 size
    for k in $(seq 1 "${#PLAYERS[@]}"); do
        if kill -0 "${PLAYERS[$((k - 1))]}" 2>/dev/null; then alive=$((alive + 1)); fi
        size=$(stat -c %s "$RUN_DIR/play-$k.ts" 2>/dev/null || echo 0)
        [ "$size" -gt "${SIZES[$((k - 1))]:-0}" ] && grown=$((grown + 1))
    done
    [ "$alive" -eq "${#PLAYERS[@]}" ] && [ "$grown" -eq "${#PLAYERS[@]}" ] ||
        die "$what: $alive of ${#PLAYERS[@]} players alive, $grown received in the window" \
            "($(sort "$RUN_DIR/players.log" | uniq -c | sort -rn | head -3))"
}

SIZES=()
sizes() {
    local k
    SIZES=()
    for k in $(seq 1 "${#PLAYERS[@]}"); do
        SIZES+=("$(stat -c %s "$RUN_DIR/play-$k.ts" 2>/dev/null || echo 0)")
    done
}

RESULT=""
run_once() {
    local side=$1 n=$2 k t0 t1 hwm=0 measured=() ports=() urls=() udp port
    RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tributary-srt-fanout.XXXXXX")
    PLAYERS=()
    case "$side" in
        tributary)
            udp=$(free_port)
            INPUT_URL="udp://127.0.0.1:$udp" start_server tributary
            publish "$udp"
            wait_http_200 "$PLAYLIST" 20 "$SERVER_PID" "HLS of the UDP input"
            measured=("$SERVER_PID")
            play "$n" "$SRT_URL"
            ;;
        reference)
            for k in $(seq 1 "$n"); do
                udp=$(free_port)
                port=$(free_port)
                ports+=("$udp")
                srt-live-transmit -q "udp://:$udp" "srt://:$port?mode=listener&latency=120" \
                    >/dev/null 2>>"$RUN_DIR/relays.log" &
                measured+=("$!")
                PIDS+=("$!")
                urls+=("srt://127.0.0.1:$port?latency=120")
            done
            sleep 1
            publish "${ports[@]}"
            play "$n" "${urls[@]}"
            ;;
        *) die "unknown side $side" ;;
    esac
    sleep "$WARMUP"
    sizes
    t0=0
    for k in "${measured[@]}"; do t0=$((t0 + $(cpu_ticks "$k"))); done
    sleep "$WINDOW"
    t1=0
    for k in "${measured[@]}"; do
        kill -0 "$k" 2>/dev/null || die "$side: process $k died during the window"
        t1=$((t1 + $(cpu_ticks "$k")))
        hwm=$((hwm + $(mem_kb "$k" VmHWM)))
    done
    check_players "$side"
    RESULT="$(cpu_seconds "$t0" "$t1") $hwm"
    cleanup
}

echo "== $(machine), RUNS=$RUNS WARMUP=${WARMUP}s WINDOW=${WINDOW}s, load now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf '| players | side | CPU s (%d s) | peak RSS MiB | CPU vs reference |\n' "$WINDOW"
printf '| ---: | --- | ---: | ---: | ---: |\n'
for n in "${COUNTS[@]}"; do
    declare -A runs=()
    for run in $(seq 1 "$RUNS"); do
        for side in $SIDES; do
            echo "== $side N=$n run $run/$RUNS" >&2
            run_once "$side" "$n"
            runs[$side]="${runs[$side]:-}$RESULT"$'\n'
        done
    done
    declare -A cpu_med=()
    for side in $SIDES; do
        cpu=$(printf '%s' "${runs[$side]}" | awk 'NF { print $1 }' | summary 2)
        rss=$(printf '%s' "${runs[$side]}" | awk 'NF { print $2 / 1024 }' | summary)
        cpu_med[$side]=${cpu%% *}
    done
    for side in $SIDES; do
        cpu=$(printf '%s' "${runs[$side]}" | awk 'NF { print $1 }' | summary 2)
        rss=$(printf '%s' "${runs[$side]}" | awk 'NF { print $2 / 1024 }' | summary)
        printf '| %s | %s | %s | %s | %s |\n' "$n" "$side" "$cpu" "$rss" \
            "$(ratio "${cpu_med[$side]}" "${cpu_med[reference]:-}")"
    done
done
