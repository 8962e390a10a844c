#!/usr/bin/env bash
# latency.sh: publish -> play latency through an RTMP server, Tributary side by side with
# nginx-rtmp, against the floor with no server in between.
#
# Usage:  bench/scripts/latency.sh [N ...]          (players; default: 1 200)
#
# For each N, each of "floor nginx tributary" and each run (RUNS, each on a fresh server):
#   - floor: the measured player is `ffmpeg -listen 1 -i rtmp://…` and the publisher sends to
#     it directly (N is ignored): what ffmpeg itself adds on both ends;
#   - nginx: ../shared/bench's nginx-rtmp peer (one worker, `live on`, HLS 2 s);
#   - tributary: the release binary on its defaults, one stream `test` with input publish://,
#     HLS and RTMP play on.
#   1. N players connect one after the other before the publisher starts, 4 of them (the
#      first, the last and two between) measured, the rest `ffmpeg -i rtmp://… -f null -`
#      (bench/scripts/latency.py): a server serves its players in some order, and a single
#      measured player would measure that order as much as the server;
#   2. the publisher sends DURATION s of bench/README's clip (720p30, GOP 60, 2 B-frames, AAC)
#      with -re; both ends run with -debug_ts and every line is stamped on arrival;
#   3. the i-th video packet received is matched to the i-th sent (servers re-base
#      timestamps; the DTS steps of both sides are checked to agree), the first 5 s left out;
#   4. RTMP -> HLS: the time from each keyframe's send to the first playlist (polled every
#      10 ms) that lists the segment it starts; segments are 2 s, so about 2 s is the floor.
# Prints per N and server: median and p90 of the per-packet video latency (ms) over all runs,
# the median of the runs' medians with their min-max, the same median and p90 for audio
# packets, and the RTMP -> HLS median.
#
# The players that are not measured run at nice LOAD_NICE: they are the load generator, and
# on a 2-core machine 200 of them at the server's priority take the CPU the server needs to
# serve them (in production they run on other machines). The measured players, the publisher
# and the server run at the same priority. LOAD_NICE=0 gives the method of the runs before
# 2026-12-05 (late), where both servers are held back by their own load generator.
#
# Environment (defaults): RUNS=3 DURATION=30 CLIP_SECONDS=60 SERVERS="floor nginx tributary"
#   LOAD_NICE=10
#   CARGO_TARGET_DIR (target/), SERVER_BIN=PATH (skip the build), KEEP (keep temp dirs).
#
# Needs: cargo, ffmpeg, curl, python3, a Linux /proc; nginx + libnginx-mod-rtmp (the peer
# script installs them). Traffic stays on 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUNS="${RUNS:-3}"
DURATION="${DURATION:-30}"
CLIP_SECONDS="${CLIP_SECONDS:-60}"
SERVERS="${SERVERS:-floor nginx tributary}"
LOAD_NICE="${LOAD_NICE:-10}"
COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(1 200)

SCRIPT=latency.sh
# shellcheck source=lib.sh
. "$ROOT/bench/scripts/lib.sh"

require_tools cargo ffmpeg curl python3

ensure_binary
ensure_clip mp4 "$CLIP_SECONDS"
ulimit -n 65536 2>/dev/null || true

# One run; appends latency.py's JSON line to $1.
run_once() {
    local server=$1 n=$2 out=$3 k port args=()
    RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tributary-latency.XXXXXX")
    chmod 755 "$RUN_DIR"
    if [ "$server" = floor ]; then
        port=$(free_port)
        args=(--listen --play "rtmp://127.0.0.1:$port/live/test" \
            --publish "rtmp://127.0.0.1:$port/live/test")
    else
        start_server "$server"
        args=(--players "$n" --load-nice "$LOAD_NICE" --play "$PLAY_URL" --publish "$PLAY_URL"
            --playlist "$PLAYLIST")
    fi
    python3 "$ROOT/bench/scripts/latency.py" --clip "$CLIP" --seconds "$DURATION" "${args[@]}" \
        >>"$out"
    cleanup
}

echo "== $(machine), RUNS=$RUNS DURATION=${DURATION}s LOAD_NICE=$LOAD_NICE, load now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf '| players | server | video latency median ms | p90 ms | run medians ms | video packets | audio latency median ms | audio p90 ms | RTMP -> HLS median ms |\n'
printf '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n'
for n in "${COUNTS[@]}"; do
    for server in $SERVERS; do
        # The floor does not depend on N: measured once.
        [ "$server" != floor ] || [ "$n" = "${COUNTS[0]}" ] || continue
        results=$(mktemp)
        for run in $(seq 1 "$RUNS"); do
            echo "== $server N=$n run $run/$RUNS" >&2
            run_once "$server" "$n" "$results"
        done
        python3 - "$n" "$server" "$results" <<'PY'
import json, statistics, sys
n, server, path = sys.argv[1], sys.argv[2], sys.argv[3]
runs = [json.loads(line) for line in open(path) if line.strip()]
for r in runs:
    for kind in ("video", "audio"):
        if r[f"{kind}_mismatched_steps"] or r[f"{kind}_received"] < r[f"{kind}_sent"] - 5:
            sys.stderr.write(f"latency.sh: {server} N={n}: {kind} packets do not match one to "
                             f"one (sent {r[kind + '_sent']}, received {r[kind + '_received']}, "
                             f"{r[kind + '_mismatched_steps']} DTS steps differ)\n")
allv = sorted(v for r in runs for v in r["video"])
alla = sorted(v for r in runs for v in r["audio"])
meds = sorted(statistics.median(r["video"]) for r in runs if r["video"])
hls = [v for r in runs for v in r.get("hls", [])]
positions = {}
for r in runs:
    for index, med in r.get("by_position", {}).items():
        positions.setdefault(int(index), []).append(med)
if len(positions) > 1:
    sys.stderr.write(f"latency.sh: {server} N={n}: video median by joining position: " +
                     ", ".join(f"#{k}: {statistics.median(v):.1f} ms"
                               for k, v in sorted(positions.items())) + "\n")
def q(v, p): return v[min(len(v) - 1, int(p * len(v)))]
hls_text = f"{statistics.median(hls):.0f}" if hls else "-"
print(f"| {n if server != 'floor' else '-'} | {server} | {statistics.median(allv):.1f} | "
      f"{q(allv, 0.9):.1f} | {statistics.median(meds):.1f} ({meds[0]:.1f}-{meds[-1]:.1f}) | "
      f"{len(allv)} | {statistics.median(alla):.1f} | {q(alla, 0.9):.1f} | {hls_text} |")
PY
        rm -f "$results"
    done
done
