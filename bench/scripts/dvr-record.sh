#!/usr/bin/env bash
# dvr-record.sh: N streams recorded at once (issue 19 "bench/"): what recording costs the
# server in CPU, how fast it writes, and what a segment's fsync costs.
#
# Usage:  bench/scripts/dvr-record.sh [N]          (default: 20)
#
# One run on a fresh server (the release binary, data in a temp dir on the disk under test,
# TMPDIR):
#   1. N streams `rec1` … `recN`, each with input publish://, HLS off, DVR on in 4 s segments
#      (SPEC's default):
#        PUT /streams/recK {"inputs":[{"url":"publish://"}],"dvr":{"enabled":true}}
#   2. N publishers, one per stream: ffmpeg -re -stream_loop -1 -i clip.mp4 -c copy -f flv
#      rtmp://…/live/recK (bench/README's source: 720p30 H.264, GOP 60, 2 B-frames, AAC; about
#      1.5 Mb/s), so the server receives N real encoded streams over RTMP;
#   3. waits WARMUP s (every stream has written segments), then samples WINDOW s:
#      - CPU seconds = utime+stime of the server process over the window (/proc/PID/stat),
#        and the same per recorded stream;
#      - write throughput = the increase of the sum of `tributary_dvr_bytes_written_total`
#        over the window (GET /metrics), in MB/s, and of `tributary_dvr_segments_written_total`;
#      - segments dropped because the disk fell behind (`tributary_dvr_segments_dropped_total`)
#        over the window: it should stay 0;
#      - fsync cost per segment: each recording's `runtime.dvr.sync_ms_per_segment` (segment
#        file plus its log line, averaged over the recording's segments; GET /streams/recK),
#        median and min-max over the streams.
# The publishers are ffmpeg processes on the same cores as the server (-c copy: little CPU
# each); quote results with that caveat.
#
# Environment (defaults): WARMUP=20 WINDOW=60 CLIP_SECONDS=60 KEEP (keep the temp dir)
#   CARGO_TARGET_DIR (target/), SERVER_BIN=PATH (skip the build).
#
# Needs: cargo, ffmpeg, curl, a Linux /proc. Traffic stays on 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
N="${1:-20}"
WARMUP="${WARMUP:-20}"
WINDOW="${WINDOW:-60}"
CLIP_SECONDS="${CLIP_SECONDS:-60}"

SCRIPT=dvr-record.sh
# shellcheck source=lib.sh
. "$ROOT/bench/scripts/lib.sh"

HINT="scripts/test installs ffmpeg" require_tools cargo ffmpeg curl

ensure_binary
ensure_clip mp4 "$CLIP_SECONDS"

# The sum over every series of metric family $1 in the exposition at $API/metrics.
metric_sum() {
    curl -s --max-time 5 "$API/metrics" |
        awk -v f="$1" '$1 ~ "^"f"[{ ]" || $1 == f { s += $NF } END { printf "%.0f", s }'
}

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tributary-dvr-record.XXXXXX")
rtmp=$(free_port)
http=$(free_port)
"$BIN" --data-dir "$RUN_DIR/data" --http "127.0.0.1:$http" --rtmp "127.0.0.1:$rtmp" \
    --srt off --rtsp off >"$RUN_DIR/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
API="http://127.0.0.1:$http"
wait_http_200 "$API/healthz" 15 "$SERVER_PID" "tributary start"

PUBLISHERS=()
echo "== $N recorded streams, $(machine), data in $RUN_DIR" >&2
for k in $(seq 1 "$N"); do
    code=$(curl -s -o "$RUN_DIR/create.json" -w '%{http_code}' --max-time 10 -X PUT \
        "$API/streams/rec$k" -d '{"inputs":[{"url":"publish://"}],"dvr":{"enabled":true}}' || true)
    case "$code" in
        200 | 201) ;;
        *) die "creating stream rec$k answered HTTP $code: $(cat "$RUN_DIR/create.json")" ;;
    esac
    ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$CLIP" -c copy \
        -f flv "rtmp://127.0.0.1:$rtmp/live/rec$k" </dev/null >>"$RUN_DIR/publishers.log" 2>&1 &
    PUBLISHERS+=("$!")
    PIDS+=("$!")
done

sleep "$WARMUP"
kill -0 "$SERVER_PID" 2>/dev/null || die "the server died during the warm-up"
recording=$(metric_sum tributary_dvr_recording_active)
[ "$recording" = "$N" ] ||
    die "only $recording of $N streams are recording after ${WARMUP} s (see $RUN_DIR/server.log)"
bytes0=$(metric_sum tributary_dvr_bytes_written_total)
segments0=$(metric_sum tributary_dvr_segments_written_total)
dropped0=$(metric_sum tributary_dvr_segments_dropped_total)
t0=$(cpu_ticks "$SERVER_PID")
sleep "$WINDOW"
t1=$(cpu_ticks "$SERVER_PID")
bytes1=$(metric_sum tributary_dvr_bytes_written_total)
segments1=$(metric_sum tributary_dvr_segments_written_total)
dropped1=$(metric_sum tributary_dvr_segments_dropped_total)
kill -0 "$SERVER_PID" 2>/dev/null || die "the server died during the window"
for pid in "${PUBLISHERS[@]}"; do
    kill -0 "$pid" 2>/dev/null ||
        die "a publisher exited during the window ($(sort "$RUN_DIR/publishers.log" | uniq -c | head -3))"
done

sync_ms=$(for k in $(seq 1 "$N"); do
    curl -s --max-time 5 "$API/streams/rec$k" |
        grep -o '"sync_ms_per_segment":[0-9.]*' | cut -d: -f2
done | summary 2)
cpu=$(cpu_seconds "$t0" "$t1")
mb_s=$(awk -v b=$((bytes1 - bytes0)) -v w="$WINDOW" 'BEGIN { printf "%.2f", b / w / 1e6 }')

echo "streams recorded:            $N ($(machine))"
echo "window:                      ${WINDOW} s after ${WARMUP} s of warm-up"
echo "server CPU:                  $cpu s ($(ratio "$cpu" "$WINDOW") cores; per stream $(ratio "$cpu" "$N" 3) s)"
echo "written:                     $mb_s MB/s, $((segments1 - segments0)) segments"
echo "segments dropped (disk):     $((dropped1 - dropped0))"
echo "fsync per segment (ms):      $sync_ms (median (min-max) over the streams)"
