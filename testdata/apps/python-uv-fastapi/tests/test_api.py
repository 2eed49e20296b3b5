from notes_api.api import get_note


def test_get_note():
    assert get_note(1).text == "buy milk"
