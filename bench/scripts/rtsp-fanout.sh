#!/usr/bin/env bash
# rtsp-fanout.sh: one RTMP publisher, N RTSP players of its stream (TCP-interleaved and UDP),
# beside N RTMP players of the same stream as the reference, on the same Tributary build.
#
# Usage:  bench/scripts/rtsp-fanout.sh [N ...]          (default: 50)
#
# No RTSP peer is installed here to compare with (nginx-rtmp has no RTSP); the reference is
# Tributary's own RTMP fan-out, whose cost against nginx-rtmp is in bench/RESULTS.md: RTSP
# players should cost about what RTMP players do (one packetization per player and frame,
# against RTMP's one shared mux per frame).
#
# For each N and each mode (rtmp, rtsp-tcp, rtsp-udp), RUNS times on a fresh server:
#   1. the release binary, one stream `test` (publish://, HLS, RTMP and RTSP play);
#   2. one publisher: ffmpeg -re -stream_loop -1 -i clip.mp4 -c copy -f flv rtmp://…/live/test;
#   3. N players: ffmpeg [-rtsp_transport tcp|udp] -i URL -c copy -f null -;
#   4. WARMUP s, then WINDOW s: CPU seconds of the server over the window and its peak RSS
#      (VmHWM), as rtmp-fanout.sh measures them; every player must still be playing.
#
# Environment (defaults): RUNS=3 WARMUP=30 WINDOW=30 CLIP_SECONDS=60 MODES="rtmp rtsp-tcp
#   rtsp-udp", CARGO_TARGET_DIR (target/), SERVER_BIN=PATH (skip the build).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUNS="${RUNS:-3}"
WARMUP="${WARMUP:-30}"
WINDOW="${WINDOW:-30}"
CLIP_SECONDS="${CLIP_SECONDS:-60}"
MODES="${MODES:-rtmp rtsp-tcp rtsp-udp}"
COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(50)

SCRIPT=rtsp-fanout.sh
WITH_RTSP=1
# shellcheck source=lib.sh
. "$ROOT/bench/scripts/lib.sh"

HINT="scripts/test installs ffmpeg" require_tools cargo ffmpeg curl

ensure_binary
ensure_clip mp4 "$CLIP_SECONDS"
ulimit -n 65536 2>/dev/null || true

RESULT=""
run_once() {
    local mode=$1 n=$2 t0 t1 hwm url args=()
    RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tributary-rtsp-fanout.XXXXXX")
    start_server tributary
    start_publisher
    case "$mode" in
        rtmp) url=$PLAY_URL ;;
        rtsp-tcp) url=$RTSP_URL; args=(-rtsp_transport tcp) ;;
        rtsp-udp) url=$RTSP_URL; args=(-rtsp_transport udp) ;;
        *) die "unknown mode $mode" ;;
    esac
    start_players "$n" "$url" "${args[@]}"
    sleep "$WARMUP"
    t0=$(cpu_ticks "$SERVER_PID")
    sleep "$WINDOW"
    t1=$(cpu_ticks "$SERVER_PID")
    hwm=$(mem_kb "$SERVER_PID" VmHWM)
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server died during the window"
    require_players_alive "$mode"
    RESULT="$(cpu_seconds "$t0" "$t1") $hwm"
    cleanup
}

echo "== $(machine), RUNS=$RUNS WARMUP=${WARMUP}s WINDOW=${WINDOW}s, load now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf '| players | mode | Tributary CPU s | peak RSS MiB | CPU vs RTMP |\n'
printf '| ---: | --- | ---: | ---: | ---: |\n'
for n in "${COUNTS[@]}"; do
    declare -A cpu_med=()
    for mode in $MODES; do
        results=()
        for run in $(seq 1 "$RUNS"); do
            echo "== $mode N=$n run $run/$RUNS" >&2
            run_once "$mode" "$n"
            results+=("$RESULT")
        done
        cpu=$(printf '%s\n' "${results[@]}" | awk '{ print $1 }' | summary 2)
        rss=$(printf '%s\n' "${results[@]}" | awk '{ print $2 / 1024 }' | summary)
        cpu_med[$mode]=${cpu%% *}
        printf '| %s | %s | %s | %s | %s |\n' "$n" "$mode" "$cpu" "$rss" \
            "$(ratio "${cpu_med[$mode]}" "${cpu_med[rtmp]:-}")"
    done
done
