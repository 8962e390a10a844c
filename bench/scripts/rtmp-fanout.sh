#!/usr/bin/env bash
# rtmp-fanout.sh: one RTMP publisher, N RTMP players: Tributary side by side with nginx-rtmp.
#
# Usage:  bench/scripts/rtmp-fanout.sh [N ...]          (default: 0 50 200)
#
# For each N and each server, RUNS times (each run on a fresh server), doing the same work:
#   - nginx-rtmp: ../shared/bench/peer-nginx-rtmp (one worker, `live on`, HLS 2 s / 24 s);
#   - Tributary: the release binary, one stream `test` with input publish:// and HLS
#     (2 s segments, the default) and RTMP play on:
#       PUT /streams/test {"inputs":[{"url":"publish://"}],"protocols":{"hls":true,"rtmp":true}}
#   1. one publisher: ffmpeg -re -stream_loop -1 -i clip.mp4 -c copy -f flv rtmp://…/live/test
#      (bench/README's source: 720p30 H.264, GOP 60, 2 B-frames, AAC; about 1.5 Mb/s);
#   2. waits until the HLS playlist answers 200 (both servers publish HLS from the same input);
#   3. starts N players: ffmpeg -i rtmp://…/live/test -c copy -f null -;
#   4. waits WARMUP s, then samples WINDOW s: CPU seconds = utime+stime of the server's process
#      tree (nginx master + worker; Tributary) over the window, from /proc/PID/stat; peak RSS =
#      summed VmHWM of that tree, read at the end of the window (bench/README's method). The
#      warm-up is long enough for memory to reach its steady state: Tributary holds the 24 s
#      HLS window plus the RFC 8216 retention after it (about 50 s of segments in all), and
#      nginx's HLS directory grows for longer; reading memory earlier flatters whichever
#      server has filled less of its window;
#   5. requires every player to be alive at the end (a player that was refused or cut exits).
# Prints per N: CPU s and peak RSS for each server (median of runs, min-max), and the ratios
# Tributary/nginx of the medians. Also the peak size of nginx's HLS directory over the window
# (sampled every second), and the memory ratio counting it: nginx keeps its HLS window in files
# (the page cache, in RAM here, outside its RSS) where Tributary keeps it in its own memory
# (SPEC §HLS "served from memory, never written to disk"), so RSS alone compares a server
# holding its segments with one that does not. Tributary's own segments are sealed memory files
# outside its RSS too; `mem_kb` (lib.sh) adds them to its figure.
#
# Environment (defaults): RUNS=3 WARMUP=60 WINDOW=30 CLIP_SECONDS=60 KEEP=1 (keep temp dirs)
#   CARGO_TARGET_DIR (target/), SERVER_BIN=PATH (skip the build), SERVERS="nginx tributary".
#
# Needs: cargo, ffmpeg, curl, a Linux /proc; nginx + libnginx-mod-rtmp (the peer script
# installs them with apt-get if missing). Traffic stays on 127.0.0.1. The players are ffmpeg
# processes on the same cores as the servers: at 200 players they cost more CPU than either
# server, which slows both alike; quote results with that caveat.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUNS="${RUNS:-3}"
WARMUP="${WARMUP:-60}"
WINDOW="${WINDOW:-30}"
CLIP_SECONDS="${CLIP_SECONDS:-60}"
SERVERS="${SERVERS:-nginx tributary}"
COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(0 50 200)

SCRIPT=rtmp-fanout.sh
# shellcheck source=lib.sh
. "$ROOT/bench/scripts/lib.sh"

HINT="scripts/test installs ffmpeg" require_tools cargo ffmpeg curl

ensure_binary
ensure_clip mp4 "$CLIP_SECONDS"
ulimit -n 65536 2>/dev/null || true

# One run; sets RESULT to "cpu_seconds hwm_kb hls_files_kb".
RESULT=""
run_once() {
    local server=$1 n=$2 k t0 t1 hwm files
    RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tributary-rtmp-fanout.XXXXXX")
    chmod 755 "$RUN_DIR"   # the nginx worker runs as nobody and serves HLS from here
    start_server "$server"
    start_publisher "$server: HLS of the publish"
    start_players "$n" "$PLAY_URL"
    sleep "$WARMUP"
    t0=$(cpu_ticks "$SERVER_PID")
    files=0
    for k in $(seq 1 "$WINDOW"); do
        sleep 1
        # nginx's HLS directory is a sawtooth (its cleanup removes a batch of old fragments at
        # once): its peak over the window, as VmHWM is for RSS.
        if [ "$server" = nginx ]; then
            files=$(du -sk "$RUN_DIR/nginx/hls" | awk -v m="$files" '{ print ($1 > m) ? $1 : m }')
        fi
    done
    t1=$(cpu_ticks "$SERVER_PID")
    hwm=$(mem_kb "$SERVER_PID" VmHWM)
    kill -0 "$SERVER_PID" 2>/dev/null || die "$server died during the window"
    require_players_alive "$server"
    RESULT="$(cpu_seconds "$t0" "$t1") $hwm $files"
    cleanup
}

echo "== $(machine), RUNS=$RUNS WARMUP=${WARMUP}s WINDOW=${WINDOW}s, load now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf '| players | nginx CPU s | Tributary CPU s | CPU ratio | nginx peak RSS MiB | Tributary peak RSS MiB | RSS ratio | nginx HLS files MiB | memory ratio with HLS files |\n'
printf '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n'
for n in "${COUNTS[@]}"; do
    declare -A cpu=() rss=() cpu_med=() rss_med=()
    files="-"
    for server in $SERVERS; do
        results=()
        for run in $(seq 1 "$RUNS"); do
            echo "== $server N=$n run $run/$RUNS" >&2
            run_once "$server" "$n"
            results+=("$RESULT")
        done
        cpu[$server]=$(printf '%s\n' "${results[@]}" | awk '{ print $1 }' | summary 2)
        rss[$server]=$(printf '%s\n' "${results[@]}" | awk '{ print $2 / 1024 }' | summary)
        if [ "$server" = nginx ]; then
            files=$(printf '%s\n' "${results[@]}" | awk '{ print $3 / 1024 }' | summary)
        fi
        cpu_med[$server]=${cpu[$server]%% *}
        rss_med[$server]=${rss[$server]%% *}
    done
    nginx_total=$(awk -v r="${rss_med[nginx]:-0}" -v f="${files%% *}" 'BEGIN { print r + f }')
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$n" \
        "${cpu[nginx]:--}" "${cpu[tributary]:--}" "$(ratio "${cpu_med[tributary]:-}" "${cpu_med[nginx]:-}")" \
        "${rss[nginx]:--}" "${rss[tributary]:--}" "$(ratio "${rss_med[tributary]:-}" "${rss_med[nginx]:-}")" "$files" \
        "$(ratio "${rss_med[tributary]:-}" "$nginx_total")"
done
