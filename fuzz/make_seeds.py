#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/<target>/ (fuzz/README.md "Seeds").

Media comes from the real encoders (ffmpeg: libx264, libx265, libaom-av1, libvpx-vp9, aac, mp2), RTMP bytes from a real
session: ffmpeg publishes to and plays from a running tributary through a recording proxy.
Everything else (playlists, URLs, bodies, RTP and Range inputs) is written out below.

    fuzz/make_seeds.py TRIBUTARY_BINARY [CORPUS_DIR]

Each target's harness reads its input in its own shape (a leading control byte for the
demuxer and the sessions, records for flv_tag, ...): the seeds are written in that shape.
Seeds are small on purpose (libFuzzer's default max_len is the largest seed).
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

FFMPEG = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
VIDEO = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"]
AUDIO = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]


def ffmpeg(*args):
    subprocess.run(FFMPEG + list(args), check=True)


def write(corpus, target, name, data):
    directory = os.path.join(corpus, target)
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def extradata(path, stream):
    """A stream's codec extradata (avcC, hvcC, AudioSpecificConfig), from ffprobe's hexdump."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", stream, "-show_streams", "-show_data", path],
        check=True, capture_output=True, text=True).stdout
    data, inside = bytearray(), False
    for line in out.splitlines():
        if line.startswith("extradata="):
            inside = True
            continue
        if inside:
            if ":" not in line[:9]:
                break
            hexpart = line[10:50].replace(" ", "")
            data += bytes.fromhex(hexpart)
    return bytes(data)


def nal_units(annex_b):
    """The NAL units of an Annex-B stream (start codes removed)."""
    units, i, starts = [], 0, []
    while True:
        i = annex_b.find(b"\x00\x00\x01", i)
        if i < 0:
            break
        starts.append(i + 3)
        i += 3
    for n, start in enumerate(starts):
        end = starts[n + 1] - 3 if n + 1 < len(starts) else len(annex_b)
        unit = annex_b[start:end]
        units.append(unit.rstrip(b"\x00") if n + 1 < len(starts) else unit)
    return units


def media(corpus, work):
    ts = lambda name: os.path.join(work, name)
    # ts_demux: the harness's first byte is the chunk size - 1 (its low two bits the program).
    ffmpeg(*VIDEO, *AUDIO, "-t", "2", "-c:v", "libx264", "-preset", "veryfast", "-g", "25",
           "-b:v", "250k", "-c:a", "aac", "-b:a", "64k", ts("h264_aac.ts"))
    ffmpeg(*VIDEO, *AUDIO, "-t", "2", "-c:v", "libx265", "-preset", "ultrafast",
           "-x265-params", "log-level=error:keyint=25", "-b:v", "200k", "-c:a", "aac",
           "-b:a", "64k", ts("h265_aac.ts"))
    # Two programs (H.264 + AAC, MPEG-2 + MP2), so program selection is exercised.
    ffmpeg(*VIDEO, *AUDIO, "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "1",
           "-map", "0:v", "-map", "1:a", "-map", "2:v", "-map", "1:a",
           "-c:v:0", "libx264", "-preset", "veryfast", "-b:v:0", "150k", "-c:a:0", "aac",
           "-c:v:1", "mpeg2video", "-b:v:1", "150k", "-c:a:1", "mp2",
           "-program", "program_num=1:title=one:st=0:st=1",
           "-program", "program_num=2:title=two:st=2:st=3", ts("two_programs.ts"))
    for name, control in [("h264_aac.ts", 0xBC), ("h265_aac.ts", 0xFC), ("two_programs.ts", 0xBD)]:
        with open(ts(name), "rb") as f:
            data = f.read()[: 188 * 1200]
        write(corpus, "ts_demux", name, bytes([control]) + data)
    with open(ts("h264_aac.ts"), "rb") as f:
        # PAT, PMT and the start of the first PES: small inputs mutate fastest.
        write(corpus, "ts_demux", "h264_aac_head.ts", bytes([0x00]) + f.read()[: 188 * 24])

    # h264_sps: SPS and PPS NAL units, the avcC record, an Annex-B access unit.
    ffmpeg(*VIDEO, "-t", "0.2", "-c:v", "libx264", "-preset", "veryfast", ts("v.h264"))
    ffmpeg(*VIDEO, "-t", "0.2", "-c:v", "libx264", "-profile:v", "high10",
           "-pix_fmt", "yuv420p10le", ts("v10.h264"))
    ffmpeg(*VIDEO, "-t", "0.2", "-c:v", "libx264", "-preset", "veryfast", ts("v.mp4"))
    for name in ["v.h264", "v10.h264"]:
        with open(ts(name), "rb") as f:
            stream = f.read()
        for unit in nal_units(stream):
            kind = unit[0] & 0x1F
            if kind == 7:
                write(corpus, "h264_sps", name.replace(".h264", "_sps"), unit)
            elif kind == 8:
                write(corpus, "h264_sps", name.replace(".h264", "_pps"), unit)
        write(corpus, "h264_sps", name.replace(".h264", "_annexb"), stream[:2048])
    write(corpus, "h264_sps", "avcc", extradata(ts("v.mp4"), "v:0"))

    # h265_sps: VPS, SPS, PPS NAL units (8 and 10 bit), the hvcC record.
    ffmpeg(*VIDEO, "-t", "0.2", "-c:v", "libx265", "-x265-params", "log-level=error",
           ts("v.hevc"))
    ffmpeg(*VIDEO, "-t", "0.2", "-c:v", "libx265", "-x265-params", "log-level=error",
           "-pix_fmt", "yuv420p10le", ts("v10.hevc"))
    ffmpeg(*VIDEO, "-t", "0.2", "-c:v", "libx265", "-x265-params", "log-level=error",
           "-tag:v", "hvc1", ts("hevc.mp4"))
    for name in ["v.hevc", "v10.hevc"]:
        with open(ts(name), "rb") as f:
            stream = f.read()
        for unit in nal_units(stream):
            kind = (unit[0] >> 1) & 0x3F
            label = {32: "vps", 33: "sps", 34: "pps"}.get(kind)
            if label:
                write(corpus, "h265_sps", name.replace(".hevc", f"_{label}"), unit)
    write(corpus, "h265_sps", "hvcc", extradata(ts("hevc.mp4"), "v:0"))

    # av1_sequence_header: libaom's temporal delimiter + sequence header (8 bit 4:2:0, 10 bit,
    # 4:4:4 RGB) and a whole keyframe temporal unit; vp9_header: libvpx keyframe headers
    # (profiles 0 and 1) and a vpcC record.
    for label, extra in [("", []), ("_main10", ["-pix_fmt", "yuv420p10le"]),
                         ("_gbrp", ["-pix_fmt", "gbrp"])]:
        ffmpeg(*VIDEO, "-frames:v", "1", "-c:v", "libaom-av1", "-cpu-used", "8", "-b:v", "100k",
               *(extra or ["-pix_fmt", "yuv420p"]), "-f", "obu", ts(f"v{label}.obu"))
        with open(ts(f"v{label}.obu"), "rb") as f:
            stream = f.read()
        write(corpus, "av1_sequence_header", f"libaom{label}_seq", stream[:2 + 2 + stream[3]])
        if not label:
            write(corpus, "av1_sequence_header", "libaom_keyframe_tu", stream[:2048])
    for label, pix_fmt in [("p0", "yuv420p"), ("p1_444", "yuv444p")]:
        ffmpeg(*VIDEO, "-frames:v", "1", "-c:v", "libvpx-vp9", "-deadline", "realtime",
               "-b:v", "100k", "-pix_fmt", pix_fmt, "-f", "ivf", ts(f"{label}.ivf"))
        with open(ts(f"{label}.ivf"), "rb") as f:
            write(corpus, "vp9_header", f"libvpx_{label}_key", f.read()[44:108])
    write(corpus, "vp9_header", "vpcc", bytes([1, 0, 0, 0, 0, 11, 0x80, 2, 2, 2, 0, 0]))

    # fmp4_write: [codec, frame length / 8, payload]: Annex-B keyframes (x264, x265), an AV1
    # temporal unit and a VP9 keyframe (libaom, libvpx), an AAC
    # config with frames, Opus TOCs, and raw AC-3 / E-AC-3 from ffmpeg's encoders.
    with open(ts("v.h264"), "rb") as f:
        write(corpus, "fmp4_write", "x264_keyframe", bytes([0, 255]) + f.read()[:2040])
    with open(ts("v.hevc"), "rb") as f:
        write(corpus, "fmp4_write", "x265_keyframe", bytes([1, 255]) + f.read()[:2040])
    with open(ts("v.obu"), "rb") as f:
        write(corpus, "fmp4_write", "av1_keyframe", bytes([6, 255]) + f.read()[:2040])
    with open(ts("p0.ivf"), "rb") as f:
        write(corpus, "fmp4_write", "vp9_keyframe", bytes([7, 255]) + f.read()[44:2084])
    write(corpus, "fmp4_write", "aac_lc", bytes([2, 2, 0x11, 0x90]) + bytes(range(1, 60)))
    write(corpus, "fmp4_write", "opus", bytes([3, 1, 0xFC, 1, 2, 3, 4, 5, 6, 7] * 3))
    ffmpeg(*AUDIO, "-t", "0.2", "-c:a", "ac3", "-b:a", "192k", "-ac", "2", ts("a.ac3"))
    ffmpeg(*AUDIO, "-t", "0.2", "-c:a", "eac3", "-b:a", "384k", "-ac", "6", "-f", "eac3",
           ts("a.eac3"))
    with open(ts("a.ac3"), "rb") as f:
        write(corpus, "fmp4_write", "ac3_bundle", bytes([4, 255]) + f.read()[:2304])
    with open(ts("a.eac3"), "rb") as f:
        write(corpus, "fmp4_write", "eac3", bytes([5, 192]) + f.read()[:1536])

    # aac_asc: AudioSpecificConfigs (stereo 48 kHz, 5.1 44.1 kHz, HE-AAC with an explicit
    # SBR sync extension) and ADTS frames.
    ffmpeg(*AUDIO, "-t", "0.3", "-c:a", "aac", "-ac", "2", ts("a.m4a"))
    ffmpeg(*AUDIO, "-t", "0.3", "-c:a", "aac", "-ac", "6", "-ar", "44100", ts("a51.m4a"))
    ffmpeg(*AUDIO, "-t", "0.3", "-c:a", "aac", "-ac", "2", "-f", "adts", ts("a.aac"))
    write(corpus, "aac_asc", "asc_lc_48k_stereo", extradata(ts("a.m4a"), "a:0"))
    write(corpus, "aac_asc", "asc_lc_44k_5_1", extradata(ts("a51.m4a"), "a:0"))
    write(corpus, "aac_asc", "asc_he_aac_sync_ext", bytes.fromhex("131056e598"))
    with open(ts("a.aac"), "rb") as f:
        write(corpus, "aac_asc", "adts_frames", f.read()[:1500])

    # flv_tag: records (kind % 3: video, audio, script; u32 timestamp; u8 length; body) cut
    # from a real FLV file, sequence headers first.
    ffmpeg(*VIDEO, *AUDIO, "-t", "0.5", "-c:v", "libx264", "-preset", "veryfast", "-g", "25",
           "-c:a", "aac", "-f", "flv", ts("a.flv"))
    with open(ts("a.flv"), "rb") as f:
        flv = f.read()
    records, at = bytearray(), 13
    while at + 11 <= len(flv) and len(records) < 6000:
        kind, size = flv[at], int.from_bytes(flv[at + 1: at + 4], "big")
        stamp = int.from_bytes(flv[at + 4: at + 7], "big") | (flv[at + 7] << 24)
        body = flv[at + 11: at + 11 + size][:255]
        records += bytes([{9: 0, 8: 1, 18: 2}.get(kind, 2)]) + struct.pack(">I", stamp)
        records += bytes([len(body)]) + body
        at += 11 + size + 4
    write(corpus, "flv_tag", "h264_aac", bytes(records))


class Recorder:
    """A TCP proxy for one connection, keeping both directions' bytes."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.up, self.down = bytearray(), bytearray()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        client, _ = self.listener.accept()
        server = socket.create_connection(self.upstream)

        def pump(src, dst, keep):
            while True:
                try:
                    data = src.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                keep += data
                dst.sendall(data)

        threading.Thread(target=pump, args=(server, client, self.down), daemon=True).start()
        pump(client, server, self.up)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rtmp(corpus, work, binary):
    http, rtmp_port = free_port(), free_port()
    server = subprocess.Popen(
        [binary, "--http", f"127.0.0.1:{http}", "--rtmp", f"127.0.0.1:{rtmp_port}",
         "--srt", "off", "--rtsp", "off", "--data-dir", os.path.join(work, "data")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{http}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/readyz")
                break
            except OSError:
                time.sleep(0.1)
        body = {"inputs": [{"url": "publish://"}], "protocols": {"rtmp": True}}
        request = urllib.request.Request(base + "/streams/seeds", json.dumps(body).encode(),
                                         method="PUT")
        urllib.request.urlopen(request)
        publish, play = Recorder(("127.0.0.1", rtmp_port)), Recorder(("127.0.0.1", rtmp_port))
        publisher = subprocess.Popen(
            FFMPEG + ["-re"] + VIDEO + AUDIO + ["-t", "4", "-c:v", "libx264", "-preset",
                                                "veryfast", "-g", "25", "-c:a", "aac", "-f",
                                                "flv", f"rtmp://127.0.0.1:{publish.port}/live/seeds"])
        time.sleep(1.5)
        subprocess.run(FFMPEG + ["-i", f"rtmp://127.0.0.1:{play.port}/live/seeds", "-t", "1.5",
                                 "-f", "null", "-"], check=True, timeout=30)
        publisher.wait(timeout=30)
    finally:
        server.terminate()
        server.wait()
    handshake = 1 + 2 * 1536
    up, down = bytes(publish.up), bytes(publish.down)
    # rtmp_handshake: the first byte is the piece size; then the client's bytes from C0.
    write(corpus, "rtmp_handshake", "ffmpeg_publish", b"\xff" + up[: handshake + 4096])
    write(corpus, "rtmp_handshake", "ffmpeg_publish_small_pieces", b"\x07" + up[: handshake + 1024])
    write(corpus, "rtmp_handshake", "ffmpeg_play", b"\xff" + bytes(play.up)[: handshake + 4096])
    # rtmp_chunk: the harness does the handshake; then the client's chunk stream.
    write(corpus, "rtmp_chunk", "ffmpeg_publish_commands", b"\xff" + up[handshake: handshake + 2048])
    write(corpus, "rtmp_chunk", "ffmpeg_publish_media", b"\x80" + up[handshake: handshake + 24576])
    write(corpus, "rtmp_chunk", "ffmpeg_play_commands", b"\xff" + bytes(play.up)[handshake:][:2048])
    # rtmp_client: the harness plays on an even first byte, publishes on an odd one; then the
    # server's answers after S0S1S2.
    write(corpus, "rtmp_client", "tributary_answers_publish", b"\xff" + down[handshake:][:4096])
    write(corpus, "rtmp_client", "tributary_plays", b"\xfe" + bytes(play.down)[handshake:][:24576])


def amf0_value(value):
    if value is None:
        return b"\x05"
    if isinstance(value, bool):
        return b"\x01" + bytes([value])
    if isinstance(value, (int, float)):
        return b"\x00" + struct.pack(">d", value)
    if isinstance(value, str):
        data = value.encode()
        if len(data) > 0xFFFF:
            return b"\x0c" + struct.pack(">I", len(data)) + data
        return b"\x02" + struct.pack(">H", len(data)) + data
    if isinstance(value, list):
        return b"\x0a" + struct.pack(">I", len(value)) + b"".join(map(amf0_value, value))
    if isinstance(value, tuple):  # ("ecma", {...})
        return b"\x08" + struct.pack(">I", len(value[1])) + amf0_props(value[1])
    return b"\x03" + amf0_props(value)


def amf0_props(props):
    out = b""
    for key, item in props.items():
        out += struct.pack(">H", len(key)) + key.encode() + amf0_value(item)
    return out + b"\x00\x00\x09"


def text_seeds(corpus):
    # amf0: the commands and metadata RTMP carries.
    connect = ["connect", 1, {"app": "live", "flashVer": "FMLE/3.0", "tcUrl": "rtmp://h/live",
                              "fpad": False, "capabilities": 15, "audioCodecs": 3191,
                              "videoCodecs": 252, "videoFunction": 1,
                              "fourCcList": ["hvc1", "av01"]}]
    write(corpus, "amf0", "connect", b"".join(map(amf0_value, connect)))
    write(corpus, "amf0", "publish", b"".join(map(amf0_value, ["publish", 5, None, "cam?key=k", "live"])))
    status = ["onStatus", 0, None, {"level": "status", "code": "NetStream.Publish.Start",
                                    "description": "ok"}]
    write(corpus, "amf0", "on_status", b"".join(map(amf0_value, status)))
    meta = ["@setDataFrame", "onMetaData",
            ("ecma", {"width": 1280, "height": 720, "framerate": 30, "videocodecid": 7,
                      "audiocodecid": 10, "encoder": "Lavf59", "stereo": True})]
    write(corpus, "amf0", "metadata", b"".join(map(amf0_value, meta)))
    write(corpus, "amf0", "long_string_date", b"\x0c\x00\x00\x00\x03abc" + b"\x0b" + struct.pack(">d", 1.7e12) + b"\x00\x00")

    # hls_playlist: live (with discontinuities), VOD, master, LL-HLS, and the value that once
    # overflowed the pull's arithmetic.
    live = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:1042
#EXT-X-DISCONTINUITY-SEQUENCE:3
#EXT-X-PROGRAM-DATE-TIME:2026-12-05T21:00:00.000Z
#EXTINF:2.000,
seg_001042.ts
#EXTINF:2.000,
seg_001043.ts
#EXT-X-DISCONTINUITY
#EXTINF:1.960,
seg_001044.ts
#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example/k1",IV=0x0123456789ABCDEF0123456789ABCDEF
#EXTINF:2.040,
seg_001045.ts
"""
    write(corpus, "hls_playlist", "live_discontinuity.m3u8", live)
    vod = """#EXTM3U
#EXT-X-VERSION:4
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-TARGETDURATION:10
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-MAP:URI="init.mp4"
#EXTINF:9.9,title
#EXT-X-BYTERANGE:1000000@0
all.ts
#EXTINF:9.9,
#EXT-X-BYTERANGE:1000000
all.ts
#EXT-X-ENDLIST
"""
    write(corpus, "hls_playlist", "vod_byterange.m3u8", vod)
    master = """#EXTM3U
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=5000000,AVERAGE-BANDWIDTH=4500000,RESOLUTION=1920x1080,FRAME-RATE=30.000,CODECS="avc1.640028,mp4a.40.2",AUDIO="aac"
1080p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1400000,RESOLUTION=842x480,CODECS="hvc1.1.6.L93.B0,mp4a.40.2",AUDIO="aac"
480p/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=200000,URI="iframes.m3u8"
"""
    write(corpus, "hls_playlist", "master.m3u8", master)
    ll = """#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:4
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5
#EXT-X-PART-INF:PART-TARGET=0.5
#EXT-X-MEDIA-SEQUENCE:18446744073709551610
#EXTINF:4.0,
s1.mp4
#EXT-X-PART:DURATION=0.5,URI="s2.p0.mp4",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="s2.p1.mp4"
"""
    write(corpus, "hls_playlist", "ll_hls_sequence_near_max.m3u8", ll)
    overflow = "#EXTM3U\n#EXT-X-TARGETDURATION:18446744073709551615\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1e308,\na.ts\n"
    write(corpus, "hls_playlist", "target_duration_u64_max.m3u8", overflow)

    # input_url: one URL per kind and option set; a NUL separates one `key=value` param.
    urls = {
        "publish": "publish://?slot=main",
        "rtmp_pull": "rtmp://origin.example.com:1935/live/cam?key=s3cret&timeout=10",
        "rtmp_legacy_push": "rtmp://0.0.0.0/live/studio-key",
        "rtmps_pull": "rtmps://user:pass@origin.example.com/app/stream",
        "srt_caller": "srt://standby.example.org:7001?streamid=match&latency=250&passphrase=abcdefghij",
        "srt_listener": "srt://:9999?mode=listener",
        "udp_multicast": "udp://239.1.1.1:5000?localaddr=10.0.0.2&source=10.0.0.9&pkt_size=1316&rtp=0",
        "udp_v6": "udp://[ff15::1]:5000?iface=eth0",
        "hls": "https://origin.example.org/match/master.m3u8?token=abc\0user_agent=tributary",
        "http_ts": "http://10.0.0.5:8000/live.ts\0headers=Authorization: Bearer x",
        "rtsp": "rtsp://cam.local:554/stream1?transport=tcp",
        "file": "file:///srv/clips/promo.ts?loop=false",
        "file_path": "/srv/clips/promo.mp4",
        "copy": "copy://match-day",
        "mixer": "mixer://video-src,audio-src?audio_failure=continue",
        "mixer_query": "mixer://video-src?audio=audio-src&audio_failure=down",
    }
    for name, url in urls.items():
        write(corpus, "input_url", name, url)

    # push_url_mask: the first byte's bit 0 picks rtmp/rtmps, bits 1.. one of six shapes; the
    # rest becomes the key.
    for shape in range(12):
        write(corpus, "push_url_mask", f"shape_{shape:02}", bytes([shape]) + b"KEYabcdef0123456789xyz")

    # stream_json: SPEC's example and bodies with every section.
    spec_example = {
        "name": "Match Day", "stream_key": "b41c7e09d2aa", "tags": ["sport"],
        "inputs": [{"url": "publish://", "priority": 0},
                   {"url": "srt://standby.example.org:7001?streamid=match&latency=250", "priority": 1},
                   {"url": "https://origin.example.org/match/master.m3u8", "priority": 2,
                    "headers": {"Authorization": "Bearer x"}, "net": {"timeout_sec": 10}}],
        "protocols": {"hls": True, "rtmp": True},
        "push": [{"url": "rtmps://live.example.com/app/KEY-1234", "enabled": True, "comment": "yt"}],
    }
    write(corpus, "stream_json", "spec_example.json", json.dumps(spec_example, indent=1))
    transcoder = {
        "inputs": [{"url": "udp://127.0.0.1:5000"}],
        "protocols": {"hls": True},
        "transcoder": {"mode": "multi",
                       "video": {"profiles": [
                           {"width": 1280, "height": 720, "bitrate": 2500, "codec": "h264"},
                           {"width": 640, "height": 360, "bitrate": 800, "resize_mode": "pad"}]},
                       "audio": {"codec": "aac", "bitrate": 128}},
        "watermark": {"enabled": True, "text": "LIVE", "position": "top_right", "opacity": 0.5},
        "dvr": {"enabled": False, "max_size_gb": 1.5},
        "thumbnail": {"enabled": False, "quality": 5},
    }
    write(corpus, "stream_json", "transcoder.json", json.dumps(transcoder, indent=1))
    write(corpus, "stream_json", "copy_mixer.json", json.dumps(
        {"inputs": [{"url": "copy://match-day"}, {"url": "mixer://a,b", "priority": 1}]}))

    # rtp_payload: RTP/TS packets (the shapes ffmpeg's rtp_mpegts writes, and CSRCs, a header
    # extension and padding), and a datagram that is plain TS.
    ts = bytes([0x47, 0x40, 0x00, 0x10]) + bytes(184)
    fixed = bytes([0x80, 33, 0x12, 0x34, 0, 0, 0x10, 0, 0xDE, 0xAD, 0xBE, 0xEF])
    write(corpus, "rtp_payload", "rtp_ts_7", fixed + ts * 7)
    header = bytes([0x80 | 0x20 | 0x10 | 2, 33, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1])
    csrcs = bytes(range(8))
    extension = bytes([0xBE, 0xDE, 0, 1, 9, 9, 9, 9])
    write(corpus, "rtp_payload", "csrc_ext_padding", header + csrcs + extension + ts + bytes([0, 0, 3]))
    write(corpus, "rtp_payload", "plain_ts", ts * 2)

    # media_range: a big-endian u32 body size, then the Range header's text.
    for name, total, value in [("first_bytes", 100, "bytes=0-9"), ("open_end", 1000, "bytes=900-"),
                               ("suffix", 5000, "bytes=-500"), ("many", 188 * 7, "bytes=0-0, 5-6,-1"),
                               ("past_end", 10, "bytes=10-"), ("huge", 0xFFFFFFFF,
                                                               "bytes=18446744073709551615-")]:
        write(corpus, "media_range", name, struct.pack(">I", total) + value.encode())

    # srt_streamid: every form SPEC §Publisher lists, and one refused mode.
    for name, value in [("publish_key", "publish:live/cam?key=s3cret-key"), ("play", "play:live/cam"),
                        ("read", "read:sports/ch1"),
                        ("request_signed", "request:live/cam?exp=1700000000&sig=ab12"),
                        ("access_control", "#!::r=live/cam,m=publish,key=s3cret-key,slot=backup"),
                        ("access_control_play", "#!::r=live/cam,m=request"), ("bare", "live/cam"),
                        ("bad_mode", "#!::m=bidirectional,r=x")]:
        write(corpus, "srt_streamid", name, value.encode())


def main():
    binary = sys.argv[1]
    corpus = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "corpus")
    work = tempfile.mkdtemp(prefix="tributary-seeds-")
    try:
        media(corpus, work)
        rtmp(corpus, work, binary)
        text_seeds(corpus)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
