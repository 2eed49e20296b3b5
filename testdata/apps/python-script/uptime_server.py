"""A one-file HTTP service that reports how long it has been up."""
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import humanize

STARTED = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        up = humanize.naturaldelta(time.monotonic() - STARTED)
        body = f"uptime-server as uid {os.getuid()}, up for {up}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(port: int) -> None:
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    serve(int(os.environ.get("PORT", "8080")))
