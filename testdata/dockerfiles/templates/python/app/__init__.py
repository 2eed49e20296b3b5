"""The Python template's app: Flask, served by its own server on port 8000."""
import os
import sys

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return f"hello from the python template as uid {os.getuid()} on python {sys.version_info.major}.{sys.version_info.minor} in {sys.prefix}\n"


@app.get("/healthz")
def healthz():
    return {"ok": True}
