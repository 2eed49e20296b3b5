import os

import markupsafe
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    # markupsafe._speedups is the C extension; importing it fails if it was not compiled
    from markupsafe import _speedups  # noqa: F401

    escaped = markupsafe.escape("<b>")
    return f"hello from python-flask as uid {os.getuid()}, escaped {escaped}, speedups {_speedups.__file__.endswith('.so')}\n"


@app.get("/healthz")
def healthz():
    return {"ok": True}
