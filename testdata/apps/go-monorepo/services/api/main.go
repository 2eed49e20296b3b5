// The acme API: GET /hello?name=… answers a greeting from libs/greeting.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"

	"example.com/acme/libs/greeting"
)

func main() {
	addr := ":8080"
	if p := os.Getenv("PORT"); p != "" {
		addr = ":" + p
	}
	http.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s (uid %d)\n", greeting.For("api", r.URL.Query().Get("name")), os.Getuid())
	})
	log.Printf("api listening on %s", addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
