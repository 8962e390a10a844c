#!/usr/bin/env bash
# udp-hls.sh: what UDP ingest -> HLS costs the server, per stream, measured from outside.
#
# Usage:  bench/scripts/udp-hls.sh [N ...]          (default: 1 10 50)
#
# For each N, RUNS times (each run on a fresh server):
#   1. starts the release binary with a temporary data dir and ephemeral loopback ports:
#      tributary --data-dir DIR --http 127.0.0.1:PORT --rtmp off --srt off --rtsp off
#   2. reads its idle VmRSS;
#   3. creates N streams benchK, each with one UDP input and HLS on:
#      POST /streams/benchK {"inputs":[{"url":"udp://127.0.0.1:P"}],"protocols":{"hls":true}}
#   4. starts N ffmpeg senders looping one pre-encoded clip in real time:
#      ffmpeg -re -stream_loop -1 -i clip.ts -c copy -f mpegts udp://127.0.0.1:P?pkt_size=1316
#   5. requires every /benchK/index.m3u8 to answer 200 within PLAYABLE_TIMEOUT s, else stops
#      with an error naming the stream (and the server log's tail);
#   6. waits WARMUP s, then samples WINDOW s: CPU = utime+stime from /proc/PID/stat of the
#      server and its descendants, VmHWM and VmRSS from /proc/PID/status, read at the end.
# Then prints, per N: CPU% (100 = one core) total and per stream, as the median of the runs
# with min-max, and RSS (MiB) total, above idle per stream, and VmHWM. The senders are not
# counted (they run in their own processes).
#
# Environment (defaults): RUNS=3 WARMUP=10 WINDOW=30 PLAYABLE_TIMEOUT=15 CLIP_SECONDS=60
#   CARGO_TARGET_DIR (target/)  KEEP=1 keeps each run's temp dir (server log, data dir).
#   SERVER_BIN=PATH skips the build and runs that binary instead.
#
# Needs: cargo, ffmpeg, curl, a Linux /proc. Sends traffic to 127.0.0.1 only, bounded in time;
# every process it starts is killed (by pid) when it exits. N senders at 720p30 copy cost
# about 1% of a core each: on a small machine they compete with the server; say so when
# quoting results (bench/RESULTS.md).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUNS="${RUNS:-3}"
WARMUP="${WARMUP:-10}"
WINDOW="${WINDOW:-30}"
PLAYABLE_TIMEOUT="${PLAYABLE_TIMEOUT:-15}"
CLIP_SECONDS="${CLIP_SECONDS:-60}"
COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(1 10 50)

SCRIPT=udp-hls.sh
# shellcheck source=lib.sh
. "$ROOT/bench/scripts/lib.sh"

HINT="scripts/test installs ffmpeg" require_tools cargo ffmpeg curl

ensure_binary
ensure_clip ts "$CLIP_SECONDS"


# One run with N streams; sets RESULT to "cpu_pct rss_kb hwm_kb idle_kb". Not run in a
# subshell, so a failure exits through the EXIT trap, which kills what the run started.
RESULT=""
run_once() {
    local n=$1 http data api server k code deadline t0 t1 rss hwm idle
    RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tributary-udp-hls.XXXXXX")
    data="$RUN_DIR/data"
    http=$(free_port)
    api="http://127.0.0.1:$http"
    "$BIN" --data-dir "$data" --http "127.0.0.1:$http" --rtmp off --srt off --rtsp off \
        >"$RUN_DIR/server.log" 2>&1 &
    server=$!
    PIDS+=("$server")

    deadline=$((SECONDS + 15))
    until [ "$(http_code "$api/healthz")" = 200 ]; do
        kill -0 "$server" 2>/dev/null || { tail -20 "$RUN_DIR/server.log" >&2; die "the server exited at start"; }
        [ "$SECONDS" -lt "$deadline" ] || die "the server did not answer /healthz within 15 s"
        sleep 0.2
    done
    idle=$(mem_kb "$server" VmRSS)

    local ports=()
    for k in $(seq 1 "$n"); do
        ports[k]=$(free_port)
        code=$(curl -s -o "$RUN_DIR/create.json" -w '%{http_code}' --max-time 10 \
            -X POST "$api/streams/bench$k" \
            -d "{\"inputs\":[{\"url\":\"udp://127.0.0.1:${ports[k]}\"}],\"protocols\":{\"hls\":true}}" || true)
        case "$code" in
            200 | 201) ;;
            *) die "creating stream bench$k answered HTTP $code: $(cat "$RUN_DIR/create.json" 2>/dev/null)" ;;
        esac
    done
    for k in $(seq 1 "$n"); do
        ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$CLIP" -c copy \
            -f mpegts "udp://127.0.0.1:${ports[k]}?pkt_size=1316" </dev/null >/dev/null 2>&1 &
        PIDS+=("$!")
    done

    deadline=$((SECONDS + PLAYABLE_TIMEOUT))
    for k in $(seq 1 "$n"); do
        until [ "$(http_code "$api/bench$k/index.m3u8")" = 200 ]; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                echo "--- server log (last 20 lines) ---" >&2
                tail -20 "$RUN_DIR/server.log" >&2
                die "stream bench$k did not become playable: GET $api/bench$k/index.m3u8 answered" \
                    "HTTP $(http_code "$api/bench$k/index.m3u8"), not 200, within ${PLAYABLE_TIMEOUT} s of" \
                    "its sender starting (is UDP ingest -> HLS in this build?)"
            fi
            kill -0 "$server" 2>/dev/null || die "the server exited while streams started"
            sleep 0.2
        done
    done

    sleep "$WARMUP"
    t0=$(cpu_ticks "$server")
    sleep "$WINDOW"
    t1=$(cpu_ticks "$server")
    rss=$(mem_kb "$server" VmRSS)
    hwm=$(mem_kb "$server" VmHWM)
    kill -0 "$server" 2>/dev/null || die "the server died during the window"
    for k in $(seq 1 "$n"); do
        code=$(http_code "$api/bench$k/index.m3u8")
        [ "$code" = 200 ] || die "stream bench$k stopped playing during the window (HTTP $code)"
    done
    RESULT=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v w="$WINDOW" -v r="$rss" -v h="$hwm" -v i="$idle" \
        'BEGIN { printf "%.2f %d %d %d", 100 * d / hz / w, r, h, i }')
    cleanup
}

echo "== $(machine)," \
    "RUNS=$RUNS WARMUP=${WARMUP}s WINDOW=${WINDOW}s, load now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf '| streams | CPU %% (1 core = 100) | CPU %% per stream | RSS MiB | RSS MiB per stream above idle | VmHWM MiB |\n'
printf '| ---: | ---: | ---: | ---: | ---: | ---: |\n'
for n in "${COUNTS[@]}"; do
    results=()
    for run in $(seq 1 "$RUNS"); do
        echo "== N=$n run $run/$RUNS" >&2
        run_once "$n"
        results+=("$RESULT")
    done
    cpu=$(printf '%s\n' "${results[@]}" | awk '{ print $1 }' | summary)
    per=$(printf '%s\n' "${results[@]}" | awk -v n="$n" '{ print $1 / n }' | summary)
    rss=$(printf '%s\n' "${results[@]}" | awk '{ print $2 / 1024 }' | summary)
    rss_per=$(printf '%s\n' "${results[@]}" | awk -v n="$n" '{ print ($2 - $4) / 1024 / n }' | summary)
    hwm=$(printf '%s\n' "${results[@]}" | awk '{ print $3 / 1024 }' | summary)
    printf '| %s | %s | %s | %s | %s | %s |\n' "$n" "$cpu" "$per" "$rss" "$rss_per" "$hwm"
done
