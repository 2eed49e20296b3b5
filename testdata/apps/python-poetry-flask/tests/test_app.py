from bookshelf import create_app


def test_index():
    client = create_app({"TESTING": True}).test_client()
    assert b"2 books" in client.get("/").data
