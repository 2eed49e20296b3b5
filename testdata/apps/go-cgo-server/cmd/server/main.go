// checksum-api: GET /sum?text=… answers the text's Adler-32 (computed in C), GET /libc the
// version of the C library the binary runs on, GET /healthz ok.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"

	"example.com/checksum-api/internal/fastsum"
)

func main() {
	addr := ":8080"
	if p := os.Getenv("PORT"); p != "" {
		addr = ":" + p
	}
	http.HandleFunc("/sum", func(w http.ResponseWriter, r *http.Request) {
		text := r.URL.Query().Get("text")
		fmt.Fprintf(w, "adler32(%q) = %08x as uid %d\n", text, fastsum.Adler32([]byte(text)), os.Getuid())
	})
	http.HandleFunc("/libc", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "glibc %s\n", fastsum.LibcVersion())
	})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	log.Printf("listening on %s", addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
