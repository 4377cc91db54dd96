package headerkey

import (
	"net/textproto"
	"testing"
)

func TestCanonicalMatchesTextproto(t *testing.T) {
	for _, k := range []string{"content-type", "Content-Type", "CONTENT-TYPE", "x-b3-traceid", "a", "a-", "-a",
		"x--y", "etag", "WWW-authenticate", "x-custom-field-with-a-rather-long-name-that-goes-past-sixty-four-bytes"} {
		got, ok := Canonical(k)
		if want := textproto.CanonicalMIMEHeaderKey(k); !ok || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", k, got, ok, want)
		}
	}
	for _, k := range []string{"", "bad name", "a:b", "ü", "x\x00"} {
		if _, ok := Canonical(k); ok {
			t.Errorf("Canonical(%q) accepted a non-token", k)
		}
	}
}

func TestCanonicalAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { Canonical("Content-Type"); Canonical("content-type") }); n != 0 {
		t.Errorf("%v allocs for a canonical and a common name; want 0", n)
	}
}
