#!/usr/bin/env python3
"""Dev helper: serve a directory of HLS/DASH files on 127.0.0.1 for trying play.mjs by hand.

    python3 tests/browser/serve.py DIR PORT            # with Access-Control-Allow-Origin: *
    python3 tests/browser/serve.py DIR PORT --no-cors  # without it (play.mjs must then fail)
"""
import functools
import http.server
import sys

TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
}


class Handler(http.server.SimpleHTTPRequestHandler):
    cors = True
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def end_headers(self):
        if self.cors:
            self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, fmt, *args):  # quiet
        pass


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit(__doc__)
    directory, port = args[0], int(args[1])
    Handler.cors = "--no-cors" not in sys.argv
    handler = functools.partial(Handler, directory=directory)
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as srv:
        srv.serve_forever()


if __name__ == "__main__":
    main()
