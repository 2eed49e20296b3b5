// Command hello prints a greeting; with the argument "ca" it also prints the first line of
// the CA bundle, to show the image carries CA certificates.
package main

import (
	"bufio"
	"fmt"
	"os"
)

func main() {
	fmt.Println("hello from go")
	if len(os.Args) > 1 && os.Args[1] == "ca" {
		f, err := os.Open("/etc/ssl/certs/ca-certificates.crt")
		if err != nil {
			fmt.Fprintln(os.Stderr, "no CA bundle:", err)
			os.Exit(1)
		}
		defer f.Close()
		s := bufio.NewScanner(f)
		if s.Scan() {
			fmt.Println(s.Text())
		}
	}
}
