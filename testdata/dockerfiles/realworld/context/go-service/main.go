package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = ":8080"
	}
	once := len(os.Args) > 1 && os.Args[1] == "--once"
	if once {
		fmt.Printf("svc listening on %s as uid %d gid %d (%s)\n", addr, os.Getuid(), os.Getgid(),
			strings.Join([]string{"go", "static"}, ", "))
		return
	}
	fmt.Println("serving forever is not part of the corpus")
}
