#!/usr/bin/python3
"""A camera-like RTSP source for the e2e tests: GStreamer's RTSP server (Debian's
gir1.2-gst-rtsp-server-1.0), an independent implementation of RTSP, RTP and RTCP.

Usage: camera.py PORT MOUNT [--h265 [--bframes]] [--user USER --password PASSWORD]
                 [--tls CERT KEY]

Serves rtsp://127.0.0.1:PORT/MOUNT: H.264 (openh264, no B-frames, SPS/PPS in the SDP's
sprop-parameter-sets and in-band; H.265 from x265 with --h265, with two B-frames between
references with --bframes) 640x360 at 25 fps and AAC 48 kHz stereo, over TCP-interleaved
or UDP as the client asks. With --user, Digest authentication is required. With --tls, it
serves RTSP over TLS only (rtsps://) with the PEM certificate and key given. Prints "ready"
once it listens; runs until killed.
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

H264 = "openh264enc bitrate=800000 gop-size=50 ! h264parse config-interval=-1 ! rtph264pay"
H265 = (
    "x265enc tune=zerolatency speed-preset=ultrafast bitrate=800 key-int-max=50 "
    "! h265parse config-interval=-1 ! rtph265pay"
)
H265_B = (
    "x265enc speed-preset=ultrafast bitrate=800 key-int-max=50 "
    'option-string="bframes=2:b-adapt=0:rc-lookahead=5" '
    "! h265parse config-interval=-1 ! rtph265pay"
)
PIPELINE = (
    "( videotestsrc is-live=true pattern=ball "
    "! video/x-raw,width=640,height=360,framerate=25/1 "
    "! {video} name=pay0 pt=96 "
    "audiotestsrc is-live=true wave=sine freq=440 "
    "! audio/x-raw,rate=48000,channels=2 ! audioconvert ! avenc_aac bitrate=96000 "
    "! rtpmp4gpay name=pay1 pt=97 )"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port")
    parser.add_argument("mount")
    parser.add_argument("--h265", action="store_true")
    parser.add_argument("--bframes", action="store_true")
    parser.add_argument("--user")
    parser.add_argument("--password", default="")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(args.port)
    factory = GstRtspServer.RTSPMediaFactory()
    video = (H265_B if args.bframes else H265) if args.h265 else H264
    factory.set_launch(PIPELINE.format(video=video))
    factory.set_shared(True)
    if args.user or args.tls:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        if args.user:
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            auth.add_digest(args.user, args.password, token)
        else:
            auth.set_default_token(token)
        if args.tls:
            auth.set_tls_certificate(Gio.TlsCertificate.new_from_files(*args.tls))
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        permissions.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory("/" + args.mount, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
