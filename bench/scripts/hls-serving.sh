#!/usr/bin/env bash
# hls-serving.sh: HLS requests per second, Tributary serving from memory against nginx serving
# the same files from disk (issue 16 item 6: "≥ 1.0× nginx's with 1 000 concurrent
# connections open").
#
# Usage:  bench/scripts/hls-serving.sh [CONNECTIONS ...]      (default: 50 500 1000)
#
# One Tributary with one RTMP publish of the bench clip (HLS-TS, 2 s segments, session tracking
# on as shipped). Its live playlist and its newest segment are copied into a directory that a
# plain nginx serves (NGINX_WORKERS workers, 1 as the peer runs; sendfile, access_log off and
# the peer's headers): the same bytes, from disk (the page cache, in practice). For each
# connection count, RUNS times, wrk (WRK_THREADS threads, DURATION s, keep-alive) loads in turn
# Tributary's playlist, nginx's copy, Tributary's newest segment (picked at the start of each
# run, so it stays in the 24 s live window) and nginx's copy of a segment. Reports requests per
# second (medians, min-max) and the ratios Tributary / nginx. wrk runs on the same cores as
# the servers, which costs both alike; non-2xx answers or socket errors fail the run.
#
# Environment (defaults): RUNS=3 DURATION=10 WRK_THREADS=2 NGINX_WORKERS=1 CLIP_SECONDS=60
#   CARGO_TARGET_DIR (target/), SERVER_BIN=PATH (skip the build).
#
# Needs: cargo, ffmpeg, curl, a Linux /proc; wrk and nginx (installed with apt-get if missing).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUNS="${RUNS:-3}"
DURATION="${DURATION:-10}"
WRK_THREADS="${WRK_THREADS:-2}"
NGINX_WORKERS="${NGINX_WORKERS:-1}"
CLIP_SECONDS="${CLIP_SECONDS:-60}"
COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(50 500 1000)

SCRIPT=hls-serving.sh
# shellcheck source=lib.sh
. "$ROOT/bench/scripts/lib.sh"

# nginx and wrk come from Debian, installed here when missing (as the peer script does).
command -v nginx >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends nginx >/dev/null
command -v wrk >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends wrk >/dev/null
HINT="apt-get install wrk nginx; scripts/test installs ffmpeg" require_tools cargo ffmpeg curl wrk nginx

ensure_binary
ensure_clip mp4 "$CLIP_SECONDS"
ulimit -n 65536 2>/dev/null || true

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tributary-hls-serving.XXXXXX")
chmod 755 "$RUN_DIR"
start_server tributary
start_publisher
api=${PLAYLIST%/test/index.m3u8}

# The newest segment's URL in Tributary's live playlist.
newest_segment() {
    local uri
    uri=$(curl -s --max-time 2 "$PLAYLIST" | grep -v '^#' | grep . | tail -1)
    [ -n "$uri" ] || die "no segment in $PLAYLIST"
    case "$uri" in
        http*) echo "$uri" ;;
        /*) echo "$api$uri" ;;
        *) echo "${PLAYLIST%/*}/$uri" ;;
    esac
}

# nginx serving a copy of the playlist and of one segment.
www="$RUN_DIR/www"
mkdir -p "$www/hls"
sleep 6   # a few segments, so the playlist has its usual length
curl -sf --max-time 5 -o "$www/hls/test.m3u8" "$PLAYLIST" || die "fetching $PLAYLIST"
curl -sf --max-time 5 -o "$www/hls/segment.ts" "$(newest_segment)" || die "fetching a segment"
chmod -R a+rX "$www"
nginx_port=$(free_port)
cat >"$RUN_DIR/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $NGINX_WORKERS;
error_log $RUN_DIR/nginx-error.log warn;
pid $RUN_DIR/nginx.pid;
events { worker_connections 8192; }
http {
    access_log off; sendfile on; tcp_nopush on;
    client_body_temp_path $RUN_DIR/body; proxy_temp_path $RUN_DIR/proxy;
    fastcgi_temp_path $RUN_DIR/fcgi; uwsgi_temp_path $RUN_DIR/uwsgi; scgi_temp_path $RUN_DIR/scgi;
    types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
    server {
        listen 127.0.0.1:$nginx_port;
        location /hls { alias $www/hls; add_header Cache-Control no-cache; add_header Access-Control-Allow-Origin *; }
    }
}
EOF
nginx -p "$RUN_DIR" -c "$RUN_DIR/nginx.conf" >"$RUN_DIR/nginx.out" 2>&1 &
PIDS+=("$!")
nginx_pid=$!
wait_http_200 "http://127.0.0.1:$nginx_port/hls/test.m3u8" 10 "$nginx_pid" "nginx start"

# Requests per second of one wrk run against URL with C connections; dies on errors.
rps() {
    local url=$1 c=$2 out
    out=$(wrk -t"$WRK_THREADS" -c"$c" -d"${DURATION}s" --timeout 5s "$url" 2>&1) ||
        die "wrk $url: $out"
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
        die "wrk -c$c $url had errors: $(grep "Non-2xx\|Socket errors" <<<"$out")"
    fi
    awk '/^Requests\/sec:/ { print $2 }' <<<"$out"
}

sizes="playlist $(stat -c %s "$www/hls/test.m3u8") B, segment $(stat -c %s "$www/hls/segment.ts") B"
echo "== $(machine), RUNS=$RUNS DURATION=${DURATION}s wrk -t$WRK_THREADS, nginx workers $NGINX_WORKERS, $sizes, load now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf '| connections | asset | Tributary req/s | nginx req/s | ratio |\n'
printf '| ---: | --- | ---: | ---: | ---: |\n'
for c in "${COUNTS[@]}"; do
    tp=() np=() ts=() ns=()
    for run in $(seq 1 "$RUNS"); do
        echo "== c=$c run $run/$RUNS" >&2
        tp+=("$(rps "$PLAYLIST" "$c")")
        np+=("$(rps "http://127.0.0.1:$nginx_port/hls/test.m3u8" "$c")")
        ts+=("$(rps "$(newest_segment)" "$c")")
        ns+=("$(rps "http://127.0.0.1:$nginx_port/hls/segment.ts" "$c")")
        kill -0 "$SERVER_PID" 2>/dev/null || die "tributary died"
    done
    for asset in playlist segment; do
        if [ "$asset" = playlist ]; then t=("${tp[@]}") n=("${np[@]}"); else t=("${ts[@]}") n=("${ns[@]}"); fi
        t_sum=$(printf '%s\n' "${t[@]}" | summary 0)
        n_sum=$(printf '%s\n' "${n[@]}" | summary 0)
        printf '| %s | %s | %s | %s | %s |\n' "$c" "$asset" "$t_sum" "$n_sum" \
            "$(ratio "${t_sum%% *}" "${n_sum%% *}")"
    done
done
