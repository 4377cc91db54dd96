package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// wire splits a written request into its request line, its sorted field
// lines, and what follows the head.
func wire(t *testing.T, b []byte) (line string, fields []string, rest string) {
	t.Helper()
	head, rest, ok := strings.Cut(string(b), "\r\n\r\n")
	if !ok {
		t.Fatalf("no end of head in %q", b)
	}
	lines := strings.Split(head, "\r\n")
	fields = lines[1:]
	slices.Sort(fields)
	return lines[0], fields, rest
}

func TestWriteRequestLikeNetHTTP(t *testing.T) {
	hdr := func() http.Header {
		return http.Header{"User-Agent": {""}, "Accept": {"*/*"}, "X-Multi": {"a", "b"}, "X-Nl": {"a\r\nb: c "}}
	}
	tests := []struct {
		name string
		req  func() *http.Request
	}{
		{"GET", func() *http.Request {
			return &http.Request{Method: "GET", URL: &url.URL{Path: "/a b", RawQuery: "q=1"}, Host: "svc:80", Header: hdr()}
		}},
		{"no method, forced query, user agent", func() *http.Request {
			h := hdr()
			h.Set("User-Agent", " curl/8 ")
			return &http.Request{URL: &url.URL{Path: "/", ForceQuery: true}, Host: "svc", Header: h}
		}},
		{"POST in memory", func() *http.Request {
			return &http.Request{Method: "POST", URL: &url.URL{Path: "/p"}, Host: "svc", Header: hdr(),
				Body: io.NopCloser(strings.NewReader("hello")), ContentLength: 5}
		}},
		{"POST empty", func() *http.Request {
			return &http.Request{Method: "POST", URL: &url.URL{Path: "/p"}, Host: "svc", Header: hdr(), Body: http.NoBody}
		}},
		{"PUT streamed with trailer", func() *http.Request {
			return &http.Request{Method: "PUT", URL: &url.URL{Path: "/p"}, Host: "svc", Header: hdr(), ContentLength: -1,
				Body:    io.NopCloser(io.MultiReader(strings.NewReader("hel"), strings.NewReader("lo"))),
				Trailer: http.Header{"X-Sum": {"42"}}}
		}},
		{"close, IPv6 zone", func() *http.Request {
			return &http.Request{Method: "DELETE", URL: &url.URL{Path: "/"}, Host: "[fe80::1%25eth0]:80", Header: hdr(), Close: true}
		}},
		{"invalid host dropped", func() *http.Request {
			return &http.Request{Method: "GET", URL: &url.URL{Path: "/"}, Host: "a b", Header: hdr()}
		}},
		{"opaque", func() *http.Request {
			return &http.Request{Method: "OPTIONS", URL: &url.URL{Opaque: "*"}, Host: "svc", Header: hdr()}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want bytes.Buffer
			if err := tt.req().Write(&want); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			bw := bufio.NewWriter(&got)
			req := tt.req()
			f, err := requestFraming(req)
			if err == nil {
				err = writeHead(bw, req, f)
			}
			if err == nil && f.length != 0 {
				err = writeBody(bw, req, f)
			}
			if err == nil {
				err = bw.Flush()
			}
			if err != nil {
				t.Fatal(err)
			}
			gl, gf, gr := wire(t, got.Bytes())
			wl, wf, wr := wire(t, want.Bytes())
			if gl != wl || !slices.Equal(gf, wf) || gr != wr {
				t.Errorf("wrote\n%q %q %q\nnet/http writes\n%q %q %q", gl, gf, gr, wl, wf, wr)
			}
		})
	}
}

func TestWriteRequestRefuses(t *testing.T) {
	tests := []struct {
		name string
		req  *http.Request
	}{
		{"field name with colon", &http.Request{Method: "GET", URL: &url.URL{Path: "/"}, Host: "svc", Header: http.Header{"A:b": {"c"}}}},
		{"field name with newline", &http.Request{Method: "GET", URL: &url.URL{Path: "/"}, Host: "svc", Header: http.Header{"A\r\nB": {"c"}}}},
		{"control in query", &http.Request{Method: "GET", URL: &url.URL{Path: "/", RawQuery: "a\x00"}, Host: "svc"}},
		{"length without body", &http.Request{Method: "POST", URL: &url.URL{Path: "/"}, Host: "svc", ContentLength: 3}},
		{"bad trailer", &http.Request{Method: "POST", URL: &url.URL{Path: "/"}, Host: "svc", ContentLength: -1,
			Body: io.NopCloser(strings.NewReader("x")), Trailer: http.Header{"Content-Length": nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := requestFraming(tt.req)
			if err == nil {
				err = writeHead(bufio.NewWriter(io.Discard), tt.req, f)
			}
			if err == nil {
				t.Error("written; want an error")
			}
		})
	}
	short := &http.Request{Method: "POST", URL: &url.URL{Path: "/"}, Host: "svc", ContentLength: 10,
		Body: io.NopCloser(strings.NewReader("short"))}
	if err := writeBody(bufio.NewWriter(io.Discard), short, framing{length: 10}); err == nil {
		t.Error("5-byte body with ContentLength 10 written; want an error")
	}
}

func TestInMemory(t *testing.T) {
	tests := []struct {
		name string
		body io.Reader
		want bool
	}{
		{"bytes", bytes.NewReader(nil), true},
		{"nop closer of strings", io.NopCloser(strings.NewReader("")), true},
		{"nop closer of buffer", io.NopCloser(new(bytes.Buffer)), true},
		{"multi reader", io.NopCloser(io.MultiReader(strings.NewReader(""))), false},
		{"pipe", func() io.Reader { r, _ := io.Pipe(); return r }(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inMemory(tt.body); got != tt.want {
				t.Errorf("inMemory = %v; want %v", got, tt.want)
			}
		})
	}
}
