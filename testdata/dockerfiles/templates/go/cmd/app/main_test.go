package main

import (
	"strings"
	"testing"
)

func TestGreeting(t *testing.T) {
	if g := greeting(1000); !strings.HasPrefix(g, "hello from the go template as uid 1000") {
		t.Fatalf("unexpected greeting %q", g)
	}
}
