package fastsum

import "testing"

func TestAdler32(t *testing.T) {
	if got := Adler32([]byte("Wikipedia")); got != 0x11e60398 {
		t.Fatalf("Adler32(Wikipedia) = %08x", got)
	}
}
