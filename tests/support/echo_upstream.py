#!/usr/bin/env python3
"""The site behind the reverse proxy in the forward-auth tests: answers every request with a
page (HTML for browsers) showing the method, path and the headers it received, as JSON in a
<pre>, so a test can see what the proxy passed on.

    echo_upstream.py PORT
"""
import html
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    def answer(self):
        seen = {"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
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
