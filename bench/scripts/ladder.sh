#!/usr/bin/env bash
# ladder.sh: a 3-rung libx264 ladder (720p / 480p / 360p) in Tributary, in `multi` and
# `per_profile` mode, against bare FFmpeg running the very same command lines.
#
# Usage:  bench/scripts/ladder.sh
#
# What the issue asks (14): Tributary's total CPU (server + its FFmpeg children) at most 1.05x
# what bare FFmpeg spends on the same ladder: the supervision, the feeding of FFmpeg's stdin,
# the demuxing of its outputs and the HLS packaging of every rung must cost almost nothing.
#
# The bare side runs the argv Tributary spawned, byte for byte (read from /proc/PID/cmdline of
# each child), so encoder settings cannot drift between the two: stdin is the same clip paced
# to real time by a separate `ffmpeg -re … -c copy -f mpegts -` (not measured, as the RTMP
# publisher is not measured on Tributary's side), output fds 3.. go to /dev/null and
# `-progress pipe:1` to a file (Tributary parses it; bare FFmpeg writes it too).
#
# For each mode, RUNS times, alternating the two sides so both see the same machine:
#   tributary: the release binary, one stream `test` (publish://, HLS) with the ladder; one
#     publisher (ffmpeg -re -stream_loop -1 -i clip.mp4 -c copy -f flv rtmp://…); WARMUP s,
#     then WINDOW s: CPU seconds of the server and its children, and of the children alone;
#     the rungs' argv are kept for the bare side.
#   bare: the same argv, one process per rung (per_profile) or one (multi); WARMUP s, then
#     WINDOW s of their CPU seconds.
# Each side must keep real time: every rung's speed (Tributary's runtime; FFmpeg's progress
# for bare) is checked at the end of the window and printed.
#
# Environment (defaults): RUNS=3 WARMUP=20 WINDOW=30 CLIP_SECONDS=60 PRESET=veryfast
#   MODES="multi per_profile", CARGO_TARGET_DIR (target/), SERVER_BIN=PATH (skip the build).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUNS="${RUNS:-3}"
WARMUP="${WARMUP:-20}"
WINDOW="${WINDOW:-30}"
CLIP_SECONDS="${CLIP_SECONDS:-60}"
PRESET="${PRESET:-veryfast}"
MODES="${MODES:-multi per_profile}"

SCRIPT=ladder.sh
# shellcheck source=lib.sh
. "$ROOT/bench/scripts/lib.sh"

require_tools cargo ffmpeg curl jq

ensure_binary
ensure_clip mp4 "$CLIP_SECONDS"

ladder_json() {
    local mode=$1
    printf ',"transcoder":{"mode":"%s","audio":{"bitrate":96},"video":{"profiles":[' "$mode"
    printf '{"width":1280,"height":720,"bitrate":1800,"preset":"%s"},' "$PRESET"
    printf '{"width":854,"height":480,"bitrate":900,"preset":"%s"},' "$PRESET"
    printf '{"width":640,"height":360,"bitrate":500,"preset":"%s"}]}}' "$PRESET"
}

# The FFmpeg children of PID, one per line.
ffmpeg_children() {
    local pid
    for pid in $(tree_pids "$1"); do
        [ "$pid" = "$1" ] && continue
        [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = ffmpeg ] && echo "$pid"
    done
    return 0
}

# Sum of cpu_ticks over PIDs.
ticks_of() {
    local total=0 pid
    for pid in "$@"; do total=$((total + $(cpu_ticks "$pid"))); done
    echo "$total"
}

RESULT=""
ARGV_DIR=""
run_tributary() {
    local mode=$1 want=$2 t0 t1 c0 c1 rss speeds children=() k deadline
    RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tributary-ladder.XXXXXX")
    STREAM_EXTRA=$(ladder_json "$mode") start_server tributary
    ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$CLIP" -c copy \
        -f flv "$PLAY_URL" </dev/null >"$RUN_DIR/publisher.log" 2>&1 &
    PIDS+=("$!")
    wait_http_200 "$PLAYLIST" 30 "$SERVER_PID" "HLS master of the ladder"
    deadline=$((SECONDS + 20))
    until [ "$(ffmpeg_children "$SERVER_PID" | wc -l)" -eq "$want" ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "$mode: $want FFmpeg children expected, found" \
            "$(ffmpeg_children "$SERVER_PID" | wc -l)"
        sleep 0.2
    done
    sleep "$WARMUP"
    mapfile -t children < <(ffmpeg_children "$SERVER_PID")
    [ "${#children[@]}" -eq "$want" ] || die "$mode: an FFmpeg child restarted during warm-up"
    t0=$(cpu_ticks "$SERVER_PID")
    c0=$(ticks_of "${children[@]}")
    sleep "$WINDOW"
    t1=$(cpu_ticks "$SERVER_PID")
    c1=$(ticks_of "${children[@]}")
    rss=$(mem_kb "$SERVER_PID" VmRSS)
    for k in "${children[@]}"; do
        kill -0 "$k" 2>/dev/null || die "$mode: FFmpeg child $k exited during the window"
    done
    # The argv each child runs, for the bare side (NUL-separated, as the kernel keeps it).
    ARGV_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tributary-ladder-argv.XXXXXX")
    k=0
    for pid in "${children[@]}"; do
        cp /proc/"$pid"/cmdline "$ARGV_DIR/$k"
        k=$((k + 1))
    done
    speeds=$(curl -s --max-time 5 "${PLAYLIST%/test/index.m3u8}/streams/test" |
        jq -r '[.data.runtime.transcoder.profiles[].speed // 0 | tostring] | join("/")')
    RESULT=$(awk -v d=$((t1 - t0)) -v c=$((c1 - c0)) -v hz="$CLK_TCK" -v r="$rss" -v s="$speeds" \
        'BEGIN { printf "%.2f %.2f %d %s", d / hz, c / hz, r, s }')
    cleanup
}

run_bare() {
    local files=("$ARGV_DIR"/*) file k=0 procs=() argv t0 t1 rss=0 speeds="" pid fd
    RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tributary-ladder-bare.XXXXXX")
    for file in "${files[@]}"; do
        mapfile -d '' argv <"$file"
        mkfifo "$RUN_DIR/in-$k"
        ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$CLIP" -c copy \
            -f mpegts - >"$RUN_DIR/in-$k" 2>>"$RUN_DIR/pacer.log" &
        PIDS+=("$!")
        # fds 3..5 (the rungs' outputs in multi mode; 3 alone per rung) to /dev/null.
        ffmpeg "${argv[@]:1}" <"$RUN_DIR/in-$k" >"$RUN_DIR/progress-$k" \
            2>>"$RUN_DIR/bare.log" 3>/dev/null 4>/dev/null 5>/dev/null &
        procs+=("$!")
        PIDS+=("$!")
        k=$((k + 1))
    done
    sleep "$WARMUP"
    t0=$(ticks_of "${procs[@]}")
    sleep "$WINDOW"
    t1=$(ticks_of "${procs[@]}")
    for pid in "${procs[@]}"; do
        kill -0 "$pid" 2>/dev/null || die "bare FFmpeg $pid exited: $(tail -3 "$RUN_DIR/bare.log")"
        rss=$((rss + $(mem_kb "$pid" VmRSS)))
    done
    for fd in $(seq 0 $((k - 1))); do
        speeds="$speeds${speeds:+/}$(grep -o 'speed=[0-9.]*' "$RUN_DIR/progress-$fd" | tail -1 | cut -d= -f2)"
    done
    RESULT=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v r="$rss" -v s="$speeds" \
        'BEGIN { printf "%.2f %.2f %d %s", d / hz, d / hz, r, s }')
    cleanup
    rm -rf "$ARGV_DIR"
}

echo "== $(machine), RUNS=$RUNS WARMUP=${WARMUP}s WINDOW=${WINDOW}s PRESET=$PRESET, load now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf '| mode | side | CPU s (%d s) | of it FFmpeg | RSS MiB | rung speeds (last run) | CPU vs bare |\n' "$WINDOW"
printf '| --- | --- | ---: | ---: | ---: | --- | ---: |\n'
for mode in $MODES; do
    case "$mode" in
        multi) want=1 ;;
        per_profile) want=3 ;;
        *) die "unknown mode $mode" ;;
    esac
    trib=()
    bare=()
    for run in $(seq 1 "$RUNS"); do
        echo "== $mode run $run/$RUNS: tributary" >&2
        run_tributary "$mode" "$want"
        trib+=("$RESULT")
        echo "== $mode run $run/$RUNS: bare ffmpeg" >&2
        run_bare
        bare+=("$RESULT")
    done
    t_cpu=$(printf '%s\n' "${trib[@]}" | awk '{ print $1 }' | summary 2)
    t_ff=$(printf '%s\n' "${trib[@]}" | awk '{ print $2 }' | summary 2)
    t_rss=$(printf '%s\n' "${trib[@]}" | awk '{ print $3 / 1024 }' | summary)
    b_cpu=$(printf '%s\n' "${bare[@]}" | awk '{ print $1 }' | summary 2)
    b_rss=$(printf '%s\n' "${bare[@]}" | awk '{ print $3 / 1024 }' | summary)
    ratio=$(ratio "${t_cpu%% *}" "${b_cpu%% *}" 3)
    printf '| %s | Tributary | %s | %s | %s | %s | %s |\n' "$mode" "$t_cpu" "$t_ff" "$t_rss" \
        "$(echo "${trib[-1]}" | awk '{ print $4 }')" "$ratio"
    printf '| %s | bare FFmpeg | %s | %s | %s | %s | 1.000 |\n' "$mode" "$b_cpu" "$b_cpu" "$b_rss" \
        "$(echo "${bare[-1]}" | awk '{ print $4 }')"
done
