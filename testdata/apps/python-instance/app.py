"""A small notes service that keeps its state next to its code, as Flask apps do with their
`instance/` folder: at start it records the boot in instance/boots.log (shipped with the app),
writes its settings' copy under /data, and answers GET / with what it wrote."""
import configparser
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
INSTANCE = os.path.join(HERE, "instance")
DATA = "/data"


def boot() -> str:
    settings = configparser.ConfigParser()
    settings.read(os.path.join(INSTANCE, "settings.ini"))
    title = settings.get("notes", "title", fallback="notes")
    # append to a file the app ships, and create new ones beside it and under /data
    with open(os.path.join(INSTANCE, "boots.log"), "a", encoding="utf-8") as f:
        f.write(f"boot as uid {os.getuid()}\n")
    os.makedirs(os.path.join(INSTANCE, "uploads"), exist_ok=True)
    with open(os.path.join(INSTANCE, "uploads", "first.txt"), "w", encoding="utf-8") as f:
        f.write("uploaded\n")
    with open(os.path.join(DATA, "notes.db"), "w", encoding="utf-8") as f:
        f.write(title + "\n")
    with open(os.path.join(INSTANCE, "boots.log"), encoding="utf-8") as f:
        boots = f.read().splitlines()
    return f"{title}: {boots[-1]}, {len(boots)} line(s) in boots.log, /data writable"


class Handler(BaseHTTPRequestHandler):
    status = ""

    def do_GET(self) -> None:
        body = (Handler.status + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    Handler.status = boot()
    port = int(os.environ.get("PORT", "8000"))
    HTTPServer(("0.0.0.0", port), Handler).serve_forever()
