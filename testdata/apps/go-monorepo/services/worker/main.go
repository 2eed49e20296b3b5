// The acme worker: sends the greetings the queue asks for.
package main

import (
	"fmt"

	"example.com/acme/libs/greeting"
)

func main() {
	fmt.Println(greeting.For("worker", "queue"))
}
