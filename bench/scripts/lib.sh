# lib.sh: what the whole-process bench scripts share (sourced, not run).
#
# Provides: die, require_tools, cleanup (kills every pid in PIDS, removes RUN_DIR unless KEEP
# is set), free_port, tree_pids, cpu_ticks, cpu_seconds, mem_kb, http_code, summary, ratio,
# wait_http_200, ensure_binary, ensure_clip, start_server, start_publisher, start_players,
# require_players_alive. The sourcing script sets SCRIPT (its name, for messages) first.

PEER="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared/bench/peer-nginx-rtmp"
PIDS=()      # every process started by the script, killed on exit
RUN_DIR=""   # the current run's temp dir

die() {
    echo "${SCRIPT:-bench}: $*" >&2
    exit 1
}

# Dies unless every command named is on PATH; $HINT (optional) says where to get them.
require_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool not found on PATH${HINT:+ ($HINT)}"
    done
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    if [ -n "$RUN_DIR" ] && [ -z "${KEEP:-}" ]; then
        rm -rf "$RUN_DIR"
    fi
    RUN_DIR=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ports bound on this machine right now (TCP and UDP, v4 and v6), one decimal per line.
bound_ports() {
    local file sl local_address rest
    for file in /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6; do
        [ -r "$file" ] || continue
        while read -r sl local_address rest; do
            [ "$sl" = "sl" ] && continue
            echo $((16#${local_address##*:}))
        done <"$file"
    done
}

# A port in 20000-59999 that nothing has bound and this script has not handed out.
TAKEN=" "
free_port() {
    local port bound
    bound=" $(bound_ports | tr '\n' ' ') "
    while :; do
        port=$((20000 + RANDOM % 40000))
        case "$bound$TAKEN" in
            *" $port "*) continue ;;
        esac
        TAKEN="$TAKEN$port "
        echo "$port"
        return
    done
}

# PID and its descendants, one per line.
tree_pids() {
    local pid=$1 child
    echo "$pid"
    for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        tree_pids "$child"
    done
}

# Summed utime+stime (clock ticks) of PID and its descendants, read from /proc/PID/stat
# (cutime/cstime would miss children still running).
cpu_ticks() {
    local total=0 pid stat
    for pid in $(tree_pids "$1"); do
        stat=$(cat /proc/"$pid"/stat 2>/dev/null) || continue
        stat=${stat##*) }                       # fields from 3 (state) on; comm may hold spaces
        # shellcheck disable=SC2086
        set -- $stat
        total=$((total + ${12} + ${13}))        # fields 14 and 15: utime, stime
    done
    echo "$total"
}

CLK_TCK=$(getconf CLK_TCK)

# Seconds between two cpu_ticks readings, two decimals: cpu_seconds T0 T1.
cpu_seconds() {
    awk -v d=$(($2 - $1)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", d / hz }'
}

# kB of the sealed segment files (memfds) process PID holds now. Tributary keeps finished HLS
# and DASH segments in them and sends them with sendfile without touching their pages, so they
# are in no RSS: memory as the machine spends it counts them here.
sealed_kb() {
    local f link size total=0
    for f in /proc/"$1"/fd/*; do
        link=$(readlink "$f" 2>/dev/null) || continue
        case $link in
            /memfd:tributary-segment*)
                size=$(stat -L -c %s "$f" 2>/dev/null) || continue
                total=$((total + size)) ;;
        esac
    done
    echo $((total / 1024))
}

# Summed field (VmRSS, VmHWM; kB) of PID and its descendants, plus the sealed segment files
# they hold now (sealed_kb; 0 for every other program).
mem_kb() {
    local total=0 pid value
    for pid in $(tree_pids "$1"); do
        value=$(awk -v f="$2:" '$1 == f { print $2 }' /proc/"$pid"/status 2>/dev/null || true)
        total=$((total + ${value:-0} + $(sealed_kb "$pid")))
    done
    echo "$total"
}

http_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true
}

# Waits until URL answers 200, at most SECONDS_MAX s, while PID lives; else dies with WHAT.
wait_http_200() {
    local url=$1 seconds_max=$2 pid=$3 what=$4 deadline=$((SECONDS + $2))
    until [ "$(http_code "$url")" = 200 ]; do
        kill -0 "$pid" 2>/dev/null || die "$what: the server exited"
        [ "$SECONDS" -lt "$deadline" ] ||
            die "$what: GET $url answered HTTP $(http_code "$url"), not 200, within ${seconds_max} s"
        sleep 0.2
    done
}

# Median and min-max of numbers, one per line: "MEDIAN (MIN-MAX)"; $1: decimals (1).
summary() {
    sort -g | awk -v d="${1:-1}" '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        f = "%." d "f"
        printf f " (" f "-" f ")", m, v[1], v[NR] }'
}

# A / B with $3 decimals (2), or "-" when B is missing or zero.
ratio() {
    awk -v a="${1:-0}" -v b="${2:-0}" -v d="${3:-2}" \
        'BEGIN { if (b > 0) printf "%." d "f", a / b; else print "-" }'
}

# Builds the release binary unless SERVER_BIN is set; sets BIN.
ensure_binary() {
    local target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
    BIN="${SERVER_BIN:-$target_dir/release/tributary}"
    if [ -z "${SERVER_BIN:-}" ]; then
        echo "== building: cargo build --release" >&2
        (cd "$ROOT" && cargo build --release) >&2
    fi
    [ -x "$BIN" ] || die "no binary at $BIN after the build (CARGO_TARGET_DIR=$target_dir)"
}

# The pre-encoded source (bench/README: 720p30, GOP 60, 2 B-frames, AAC), cached; sets CLIP.
# $1: container extension (ts, mp4); $2: seconds.
ensure_clip() {
    local ext=$1 seconds=$2 cache="${TMPDIR:-/tmp}/tributary-bench"
    mkdir -p "$cache"
    CLIP="$cache/clip-720p30-g60-bf2-aac-${seconds}s.$ext"
    if [ ! -s "$CLIP" ]; then
        echo "== encoding $CLIP" >&2
        ffmpeg -hide_banner -nostdin -loglevel error -y \
            -f lavfi -i testsrc2=size=1280x720:rate=30 \
            -f lavfi -i sine=frequency=440:sample_rate=48000 \
            -t "$seconds" -c:v libx264 -preset veryfast -g 60 -keyint_min 60 -sc_threshold 0 \
            -bf 2 -pix_fmt yuv420p -c:a aac -b:a 128k -ac 2 -f "${ext/ts/mpegts}" "$CLIP.partial"
        mv "$CLIP.partial" "$CLIP"
    fi
}

machine() {
    echo "$(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
}

# Starts SERVER (nginx: ../shared/bench's nginx-rtmp peer; tributary: the release binary with
# one stream `test`, input INPUT_URL (publish://), HLS and RTMP play on, RTSP play when
# WITH_RTSP=1, SRT play when WITH_SRT=1, and STREAM_EXTRA (e.g. `,"transcoder":{…}`) appended
# to the stream's JSON)
# in RUN_DIR; sets SERVER_PID, PLAY_URL (rtmp://…/live/test, for players and the publisher),
# PLAYLIST, with WITH_RTSP=1 RTSP_URL (rtsp://…/live/test) and with WITH_SRT=1 SRT_URL
# (srt://…?streamid=play:live/test).
start_server() {
    local server=$1 rtmp http api code body rtsp="off" srt="off" protocols='"hls":true,"rtmp":true'
    rtmp=$(free_port)
    http=$(free_port)
    if [ "${WITH_RTSP:-0}" = 1 ]; then
        # An even port whose successor is free too: RTSP over UDP sends RTCP from it.
        local port
        while :; do
            port=$(free_port)
            [ $((port % 2)) -eq 0 ] && ! bound_ports | grep -qx $((port + 1)) && break
        done
        rtsp="127.0.0.1:$port"
        protocols="$protocols"',"rtsp":true'
        RTSP_URL="rtsp://$rtsp/live/test"
    fi
    if [ "${WITH_SRT:-0}" = 1 ]; then
        srt="127.0.0.1:$(free_port)"
        protocols="$protocols"',"srt":true'
        SRT_URL="srt://$srt?streamid=play:live/test"
    fi
    case "$server" in
        nginx)
            [ -x "$PEER" ] || die "no nginx-rtmp peer script at $PEER"
            SERVER_PID=$("$PEER" "$rtmp" "$http" "$RUN_DIR/nginx")
            PIDS+=("$SERVER_PID")
            PLAYLIST="http://127.0.0.1:$http/hls/test.m3u8"
            ;;
        tributary)
            "$BIN" --data-dir "$RUN_DIR/data" --http "127.0.0.1:$http" --rtmp "127.0.0.1:$rtmp" \
                --srt "$srt" --rtsp "$rtsp" >"$RUN_DIR/server.log" 2>&1 &
            SERVER_PID=$!
            PIDS+=("$SERVER_PID")
            api="http://127.0.0.1:$http"
            wait_http_200 "$api/healthz" 15 "$SERVER_PID" "tributary start"
            body='{"inputs":[{"url":"'"${INPUT_URL:-publish://}"'"}],"protocols":{'"$protocols"'}'
            body="$body${STREAM_EXTRA:-}}"
            code=$(curl -s -o "$RUN_DIR/create.json" -w '%{http_code}' --max-time 10 -X PUT \
                "$api/streams/test" -d "$body" || true)
            case "$code" in
                200 | 201) ;;
                *) die "creating stream test answered HTTP $code: $(cat "$RUN_DIR/create.json")" ;;
            esac
            PLAYLIST="$api/test/index.m3u8"
            ;;
        *) die "unknown server $server" ;;
    esac
    PLAY_URL="rtmp://127.0.0.1:$rtmp/live/test"
}

# Publishes CLIP to PLAY_URL as FLV in real time, looped, and waits until PLAYLIST answers;
# $1: what, for the message if it does not.
start_publisher() {
    ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$CLIP" -c copy \
        -f flv "$PLAY_URL" </dev/null >"$RUN_DIR/publisher.log" 2>&1 &
    PIDS+=("$!")
    wait_http_200 "$PLAYLIST" 20 "$SERVER_PID" "${1:-HLS of the publish}"
}

# Starts N ffmpeg players of URL that copy to nowhere (further arguments: ffmpeg input options,
# e.g. -rtsp_transport tcp), their errors in RUN_DIR/players.log; sets PLAYERS to their pids.
PLAYERS=()
start_players() {
    local n=$1 url=$2 k
    shift 2
    PLAYERS=()
    for k in $(seq 1 "$n"); do
        ffmpeg -hide_banner -nostdin -loglevel error "$@" -i "$url" -c copy -f null - \
            </dev/null >/dev/null 2>>"$RUN_DIR/players.log" &
        PLAYERS+=("$!")
        PIDS+=("$!")
        # Connect in small batches: a burst of handshakes is not what we measure.
        [ $((k % 25)) -ne 0 ] || sleep 0.5
    done
}

# Dies unless every player in PLAYERS still runs, naming the commonest player errors; $1: what.
require_players_alive() {
    local pid alive=0
    for pid in "${PLAYERS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then alive=$((alive + 1)); fi
    done
    [ "$alive" -eq "${#PLAYERS[@]}" ] ||
        die "$1: only $alive of ${#PLAYERS[@]} players were still playing at the end of the window" \
            "($(sort "$RUN_DIR/players.log" 2>/dev/null | uniq -c | sort -rn | head -3))"
}
