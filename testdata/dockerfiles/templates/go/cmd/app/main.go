// The Go template's app: an HTTP server with no dependencies outside the standard library.
// GET / greets with the uid it runs as and how many CA certificates it found (the image is
// FROM scratch: the bundle copied from the builder is the only trust store); GET /healthz
// answers ok.
package main

import (
	"crypto/x509"
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

// caCount is the number of certificates in the system pool (0 when there is none).
func caCount() int {
	pem, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		return 0
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return 0
	}
	return len(pool.Subjects())
}

func greeting(uid int) string {
	return fmt.Sprintf("hello from the go template as uid %d with %d CA certificates\n", uid, caCount())
}

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, greeting(os.Getuid()))
	})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	log.Printf("listening on %s", addr())
	log.Fatal(http.ListenAndServe(addr(), nil))
}
