// Command server prints a greeting from the internal greet package.
package main

import (
	"fmt"

	"example.com/gocmd/internal/greet"
)

func main() {
	fmt.Println(greet.Message("server"))
}
