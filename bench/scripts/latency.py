#!/usr/bin/env python3
"""latency.py: publish -> play latency of one RTMP server, measured with ffmpeg on both ends.

Run by latency.sh, once per server and run. Starts the players first (so they see the publish
from its first packet), then the publisher. With --players N, N players join one after the
other, and --measured M of them, spread evenly over the joining order (the first, the last and
between), run with -debug_ts: a server serves its players in some order, and one player alone
would measure that order as much as the server. The publisher and the measured players are
ffmpeg with -debug_ts, and every line they print is stamped on arrival with this process's
monotonic clock. ffmpeg prints a
"muxer <- type:video" line as it hands a packet to the RTMP muxer (the send) and a
"demuxer -> ... type:video" line as it reads one (the receipt). Servers may re-base timestamps,
so packets are matched by order: the i-th video packet received is the i-th sent. The match is
checked: the sequences of DTS steps on both sides must agree.

Also, with --playlist: polls the HLS playlist every 10 ms and records when each segment first
appears; segment k starts at the k-th keyframe sent (the clip has a keyframe every 2 s, the
servers cut 2 s segments at keyframes), so "RTMP -> HLS" is the time from that keyframe's send
to the first playlist that lists its segment (the segment's own duration included).

Audio packets are matched and timed the same way, apart from video.

Prints one JSON object: {"video": [latencies ms of every measured player], "audio": [...],
"hls": [...], "by_position": {join index: video median ms}, ...}.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

SEND = {kind: re.compile(rf"muxer <- type:{kind} pkt_pts:\S+ pkt_pts_time:\S+ pkt_dts:(-?\d+)")
        for kind in ("video", "audio")}
RECV = {kind: re.compile(rf"demuxer -> ist_index:\d+ type:{kind} .*?pkt_dts:(-?\d+) ")
        for kind in ("video", "audio")}


def stamp_lines(proc, out):
    """Appends (monotonic seconds, line) for every line (\\n or \\r ended) proc prints."""
    buf = b""
    fd = proc.stderr.fileno()
    while True:
        chunk = os.read(fd, 65536)
        now = time.monotonic()
        if not chunk:
            return
        buf += chunk
        parts = re.split(rb"[\r\n]", buf)
        buf = parts.pop()
        for part in parts:
            if part:
                out.append((now, part.decode("utf-8", "replace")))


def watch_playlist(url, stop, seen):
    """Records the first monotonic time each segment URI appears in the playlist."""
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                text = answer.read().decode()
            now = time.monotonic()
            for line in text.splitlines():
                if line and not line.startswith("#") and line not in seen:
                    seen[line] = now
        except Exception:  # noqa: BLE001 - not there yet, or between segments
            pass
        time.sleep(0.01)


def measured_positions(players, measured):
    """The join indexes of the measured players: evenly spread, first and last included."""
    measured = max(1, min(players, measured))
    if measured == 1:
        return {0}
    return {round(k * (players - 1) / (measured - 1)) for k in range(measured)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--play", required=True, help="RTMP URL the measured player reads")
    parser.add_argument("--publish", required=True, help="RTMP URL the publisher sends to")
    parser.add_argument("--clip", required=True)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--listen", action="store_true",
                        help="the player listens (-listen 1): the floor, no server between")
    parser.add_argument("--playlist", help="HLS playlist URL to watch")
    parser.add_argument("--skip", type=float, default=5,
                        help="seconds of packets left out at the start (players probe first)")
    parser.add_argument("--players", type=int, default=1, help="players in all")
    parser.add_argument("--load-nice", type=int, default=0,
                        help="niceness of the players that are not measured (0: as the server)")
    parser.add_argument("--measured", type=int, default=4,
                        help="players measured, spread over the joining order")
    args = parser.parse_args()

    positions = measured_positions(args.players, args.measured)
    measured = []  # (join index, process, stamped lines, reader thread)
    background = []
    for index in range(args.players):
        if index in positions:
            cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-debug_ts"]
            if args.listen:
                cmd += ["-listen", "1"]
            cmd += ["-i", args.play, "-c", "copy", "-f", "null", "-"]
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            lines = []
            reader = threading.Thread(target=stamp_lines, args=(proc, lines), daemon=True)
            reader.start()
            measured.append((index, proc, lines, reader))
        else:
            background.append(subprocess.Popen(
                ["nice", "-n", str(args.load_nice),
                 "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", args.play,
                 "-c", "copy", "-f", "null", "-"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if index % 25 == 24:
            time.sleep(0.5)  # connect in small batches: a burst of handshakes is not measured
        else:
            time.sleep(0.02)  # keep the joining order
    time.sleep(1.5)  # connected (or listening) before the publisher starts

    publisher = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-nostdin", "-debug_ts", "-re", "-i", args.clip,
         "-t", str(args.seconds), "-c", "copy", "-f", "flv", args.publish],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sent = []
    writer = threading.Thread(target=stamp_lines, args=(publisher, sent), daemon=True)
    writer.start()
    stop = threading.Event()
    segments = {}
    watcher = None
    if args.playlist:
        watcher = threading.Thread(target=watch_playlist, args=(args.playlist, stop, segments),
                                   daemon=True)
        watcher.start()

    publisher.wait()
    writer.join()
    time.sleep(3)  # the tail reaches the players (and the last segment the playlist)
    stop.set()
    players = [m[1] for m in measured] + background
    for proc in players:
        proc.terminate()
    # One deadline for all: an ffmpeg blocked in a read of an idle RTMP connection may ignore
    # SIGTERM, and 200 of them waited for one by one would take minutes.
    deadline = time.monotonic() + 5
    for proc in players:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for _, _, _, reader in measured:
        reader.join(5)

    result = {"video": [], "audio": [], "by_position": {}}
    start = None
    video_sends = []
    for index, _, received, _ in measured:
        for kind in ("video", "audio"):
            sends = [(t, int(m.group(1))) for t, line in sent if (m := SEND[kind].search(line))]
            recvs = [(t, int(m.group(1))) for t, line in received
                     if (m := RECV[kind].search(line))]
            result[f"{kind}_sent"] = len(sends)
            result[f"{kind}_received"] = min(len(recvs), result.get(f"{kind}_received", 1 << 30))
            n = min(len(sends), len(recvs))
            steps_sent = [sends[i + 1][1] - sends[i][1] for i in range(n - 1)]
            steps_recv = [recvs[i + 1][1] - recvs[i][1] for i in range(n - 1)]
            # DTS steps in ms (FLV) on both ends; a server may round by a tick.
            result[f"{kind}_mismatched_steps"] = result.get(f"{kind}_mismatched_steps", 0) + sum(
                1 for a, b in zip(steps_sent, steps_recv) if abs(a - b) > 2)
            if start is None:
                start = sends[0][0] + args.skip if sends else 0
            if kind == "video":
                video_sends = sends
            latencies = [(recvs[i][0] - sends[i][0]) * 1000 for i in range(n)
                         if sends[i][0] >= start]
            result[kind] += latencies
            if kind == "video" and latencies:
                result["by_position"][index] = statistics.median(latencies)

    if args.playlist:
        # Keyframes: the clip's GOP is 60 frames, so every 60th video packet sent.
        keys = [video_sends[i][0] for i in range(0, len(video_sends), 60)]
        listed = sorted(segments.values())
        result["segments"] = len(listed)
        result["hls"] = [(listed[k] - keys[k]) * 1000 for k in range(min(len(keys), len(listed)))
                         if keys[k] >= start]
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
