{
  "targets": [
    {
      "target_name": "native_hash",
      "sources": ["src/hash.c"],
      "cflags": ["-O2", "-Wall"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-l:libsqlite3.so.0"]
    }
  ]
}
