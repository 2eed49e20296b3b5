// Package greeting builds the greetings both services send.
package greeting

import "fmt"

// For greets someone on behalf of a service.
func For(service, name string) string {
	return fmt.Sprintf("hello %s, from the acme %s", name, service)
}
