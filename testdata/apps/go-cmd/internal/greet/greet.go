// Package greet builds greetings.
package greet

// Message greets name.
func Message(name string) string {
	return "hello from go, " + name
}
