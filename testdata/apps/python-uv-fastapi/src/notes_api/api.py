import os
import sys

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI(title="notes-api")

_notes: dict[int, str] = {1: "buy milk"}


class Note(BaseModel):
    text: str


@app.get("/")
def index() -> dict:
    return {
        "service": "notes-api",
        "uid": os.getuid(),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "notes": len(_notes),
    }


@app.get("/notes/{note_id}")
def get_note(note_id: int) -> Note:
    if note_id not in _notes:
        raise HTTPException(status_code=404, detail="no such note")
    return Note(text=_notes[note_id])


@app.post("/notes")
def add_note(note: Note) -> dict:
    note_id = max(_notes, default=0) + 1
    _notes[note_id] = note.text
    return {"id": note_id}
