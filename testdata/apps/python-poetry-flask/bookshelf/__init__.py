"""bookshelf: a reading list served by Flask."""

import os

from flask import Flask, jsonify


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(BOOKS=["Dune", "Solaris"])
    if config:
        app.config.update(config)

    @app.get("/")
    def index():
        return f"bookshelf with {len(app.config['BOOKS'])} books, served as uid {os.getuid()}\n"

    @app.get("/books")
    def books():
        return jsonify(app.config["BOOKS"])

    return app
