#!/usr/bin/env bash
# metrics-cost.sh: what GET /metrics costs the server (issue 17: "≤ 2 % CPU difference with and
# without a scraper every 5 s" on the RTMP fan-out bench).
#
# Usage:  bench/scripts/metrics-cost.sh [N]          (default N: 50 players)
#
# The RTMP fan-out run of rtmp-fanout.sh (one publisher, N ffmpeg RTMP players, HLS on), on
# Tributary only, in two variants taken in turn, RUNS times each on a fresh server:
#   - plain:   nobody asks for /metrics;
#   - scraped: a scraper fetches GET /metrics every SCRAPE_EVERY s (5) from the start of the
#              run, as Prometheus would (its body read whole, then dropped).
# CPU seconds = utime+stime of the server over the WINDOW after WARMUP (bench/README's
# method). Prints the medians (min-max) and the ratio scraped / plain, and the size of one
# scrape. The figure is small against run-to-run noise; quote the spread with it.
#
# Environment (defaults): RUNS=3 WARMUP=30 WINDOW=60 SCRAPE_EVERY=5 CLIP_SECONDS=60
#   CARGO_TARGET_DIR (target/), SERVER_BIN=PATH (skip the build).
#
# Needs: cargo, ffmpeg, curl, a Linux /proc.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUNS="${RUNS:-3}"
WARMUP="${WARMUP:-30}"
WINDOW="${WINDOW:-60}"
SCRAPE_EVERY="${SCRAPE_EVERY:-5}"
CLIP_SECONDS="${CLIP_SECONDS:-60}"
N="${1:-50}"

SCRIPT=metrics-cost.sh
# shellcheck source=lib.sh
. "$ROOT/bench/scripts/lib.sh"

HINT="scripts/test installs ffmpeg" require_tools cargo ffmpeg curl

ensure_binary
ensure_clip mp4 "$CLIP_SECONDS"
ulimit -n 65536 2>/dev/null || true

# One run of `variant` (plain | scraped); sets RESULT to "cpu_seconds scrape_bytes".
RESULT=""
run_once() {
    local variant=$1 t0 t1 api bytes=0
    RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tributary-metrics-cost.XXXXXX")
    start_server tributary
    api=${PLAYLIST%/test/index.m3u8}
    start_publisher
    if [ "$variant" = scraped ]; then
        (while sleep "$SCRAPE_EVERY"; do curl -s --max-time 5 "$api/metrics" >/dev/null; done) &
        PIDS+=("$!")
    fi
    start_players "$N" "$PLAY_URL"
    sleep "$WARMUP"
    t0=$(cpu_ticks "$SERVER_PID")
    sleep "$WINDOW"
    t1=$(cpu_ticks "$SERVER_PID")
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server died during the window"
    require_players_alive "$variant"
    if [ "$variant" = scraped ]; then
        bytes=$(curl -s --max-time 5 "$api/metrics" | wc -c)
    fi
    RESULT="$(cpu_seconds "$t0" "$t1") $bytes"
    cleanup
}

echo "== $(machine), N=$N RUNS=$RUNS WARMUP=${WARMUP}s WINDOW=${WINDOW}s SCRAPE_EVERY=${SCRAPE_EVERY}s, load now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
plain=() scraped=() size=0
for run in $(seq 1 "$RUNS"); do
    for variant in plain scraped; do
        echo "== $variant run $run/$RUNS" >&2
        run_once "$variant"
        if [ "$variant" = plain ]; then plain+=("${RESULT%% *}"); else
            scraped+=("${RESULT%% *}")
            size=${RESULT##* }
        fi
    done
done
p=$(printf '%s\n' "${plain[@]}" | summary 2)
s=$(printf '%s\n' "${scraped[@]}" | summary 2)
printf '| players | plain CPU s | scraped every %ss CPU s | ratio | one scrape |\n' "$SCRAPE_EVERY"
printf '| ---: | ---: | ---: | ---: | ---: |\n'
printf '| %s | %s | %s | %s | %s B |\n' "$N" "$p" "$s" \
    "$(ratio "${s%% *}" "${p%% *}" 3)" "$size"
