#!/usr/bin/env python3
"""The site behind the reverse proxy in the forward-auth tests: answers every request with a
page (HTML for browsers) showing the method, path (as sent and as an application would
normalise it) and the headers it received, as JSON in a
<pre>, so a test can see what the proxy passed on.

    echo_upstream.py PORT
"""
import html
import json
import posixpath
import re
import sys
from urllib.parse import unquote
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def normalised(target):
    """The path as a lenient application reads it: ;parameters dropped, decoded, duplicate
    slashes merged, dot segments resolved (what the gate must never judge differently)."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    path = "/".join(segment.split(";", 1)[0] for segment in path.split("/"))
    path = re.sub("/+", "/", unquote(path, errors="replace"))
    return posixpath.normpath(path) if path else "/"


class Echo(BaseHTTPRequestHandler):
    def answer(self):
        seen = {
            "method": self.command,
            "path": self.path,
            "normalised": normalised(self.path),
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }
        body = json.dumps(seen, ensure_ascii=False)
        if "text/html" in self.headers.get("Accept", ""):
            page = f"<!doctype html><html lang=en><title>The app</title><h1>The app</h1><pre id=seen>{html.escape(body)}</pre>"
            data, kind = page.encode(), "text/html; charset=utf-8"
        else:
            data, kind = body.encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_HEAD = answer

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
