"""notes-api: keeps short notes in memory and serves them over HTTP."""

__version__ = "0.3.0"


def main() -> None:
    """Console script: serve the API (the image runs uvicorn directly)."""
    import uvicorn

    uvicorn.run("notes_api.api:app", host="0.0.0.0", port=8000)
