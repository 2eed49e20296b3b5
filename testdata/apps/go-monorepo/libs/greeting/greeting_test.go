package greeting

import "testing"

func TestFor(t *testing.T) {
	if got := For("api", "ada"); got != "hello ada, from the acme api" {
		t.Fatal(got)
	}
}
