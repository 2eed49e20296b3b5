// A small HTTP server: GET / greets, GET /healthz answers ok; `-healthcheck` probes /healthz
// (distroless images have no curl, so the binary checks itself).
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
)

func addr() string {
	if p := os.Getenv("PORT"); p != "" {
		return ":" + p
	}
	return ":8080"
}

func main() {
	health := flag.Bool("healthcheck", false, "probe the running server and exit")
	flag.Parse()
	if *health {
		resp, err := http.Get("http://127.0.0.1" + addr() + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			os.Exit(1)
		}
		return
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from go-http as uid %d\n", os.Getuid())
	})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	log.Printf("listening on %s", addr())
	log.Fatal(http.ListenAndServe(addr(), nil))
}
