package upstream

import (
	"bufio"
	"errors"
	"io"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// parsed is what a reader made of a response: head, body and trailer.
type parsed struct {
	code           int
	status         string
	header         http.Header
	length         int64
	close          bool
	body           string
	bodyErr        bool
	trailer        http.Header
	transferChunks bool
}

// readWith reads raw, an answer to method, with read.
func readWith(raw, method string, read func(*bufio.Reader, *http.Request) (*http.Response, error)) (*parsed, error) {
	req, _ := http.NewRequest(method, "http://"+testHost+"/", nil)
	resp, err := read(bufio.NewReaderSize(strings.NewReader(raw), 4096), req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	return &parsed{
		code: resp.StatusCode, status: resp.Status, header: resp.Header, length: resp.ContentLength,
		close: resp.Close, body: string(b), bodyErr: err != nil, trailer: resp.Trailer,
		transferChunks: len(resp.TransferEncoding) > 0,
	}, nil
}

func readOwn(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	head, err := readHead(br)
	if err != nil {
		return nil, err
	}
	return parseResponse(head, req, br)
}

// checkLikeNetHTTP fails t unless net/http reads a response the way the
// reader does, whenever the reader accepts it: same head, and when the
// body reads whole, the same body and trailer.
func checkLikeNetHTTP(t *testing.T, raw, method string) (*parsed, error) {
	t.Helper()
	own, err := readWith(raw, method, readOwn)
	if err != nil {
		return nil, err
	}
	std, serr := readWith(raw, method, http.ReadResponse)
	if serr != nil {
		t.Fatalf("%q: accepted, but net/http says %v", raw, serr)
	}
	if _, ok := own.header["Cache-Control"]; !ok { // net/http adds one for Pragma: no-cache
		delete(std.header, "Cache-Control")
	}
	if own.bodyErr {
		own.body, own.trailer, std.body, std.bodyErr, std.trailer = "", nil, "", true, nil
	}
	if !reflect.DeepEqual(own, std) {
		t.Fatalf("%q:\n got %+v\nwant %+v (net/http)", raw, *own, *std)
	}
	return own, nil
}

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name, raw, method string
		want              parsed // header, status and trailer unchecked when nil/empty
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "GET",
			parsed{code: 200, length: 5, body: "hello"}},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", "GET", parsed{code: 200, length: 2, body: "hi"}},
		{"lower-case names", "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nx-custom-thing: a\r\n\r\n", "GET",
			parsed{code: 404, length: 0, header: http.Header{"Content-Length": {"0"}, "X-Custom-Thing": {"a"}}}},
		{"repeated fields", "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", "GET",
			parsed{code: 200, header: http.Header{"Set-Cookie": {"a=1", "b=2"}, "Content-Length": {"0"}}}},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTrailer: x-sum\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n", "GET",
			parsed{code: 200, length: -1, body: "hello world", transferChunks: true, trailer: http.Header{"X-Sum": {"42"}}}},
		{"chunked cut", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "GET",
			parsed{code: 200, length: -1, transferChunks: true, bodyErr: true}},
		{"length cut", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", "GET",
			parsed{code: 200, length: 100, bodyErr: true}},
		{"until close", "HTTP/1.1 200 OK\r\n\r\nall of it", "GET", parsed{code: 200, length: -1, close: true, body: "all of it"}},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", "GET", parsed{code: 200, length: 1, close: true, body: "x"}},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", "GET",
			parsed{code: 200, length: 1, body: "x"}},
		{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", "GET",
			parsed{code: 200, length: 1, close: true, body: "x"}},
		{"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", "HEAD", parsed{code: 200, length: 1234}},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", "GET", parsed{code: 204}},
		{"304 with length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", "GET", parsed{code: 304}},
		{"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", "GET", parsed{code: 101}},
		{"no reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "GET", parsed{code: 200, status: "200"}},
		{"values trimmed", "HTTP/1.1 200 OK\r\nX-A: \t v w \t\r\nContent-Length: 0\r\n\r\n", "GET",
			parsed{code: 200, header: http.Header{"X-A": {"v w"}, "Content-Length": {"0"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkLikeNetHTTP(t, tt.raw, tt.method)
			if err != nil {
				t.Fatalf("%q: %v", tt.raw, err)
			}
			w := tt.want
			if got.code != w.code || got.length != w.length || got.close != w.close || got.body != w.body ||
				got.bodyErr != w.bodyErr || got.transferChunks != w.transferChunks {
				t.Errorf("got %+v; want %+v", *got, w)
			}
			if w.header != nil && !maps.EqualFunc(got.header, w.header, func(a, b []string) bool { return reflect.DeepEqual(a, b) }) {
				t.Errorf("header %v; want %v", got.header, w.header)
			}
			if w.status != "" && got.status != w.status {
				t.Errorf("status %q; want %q", got.status, w.status)
			}
			if w.trailer != nil && !reflect.DeepEqual(got.trailer, w.trailer) {
				t.Errorf("trailer %v; want %v", got.trailer, w.trailer)
			}
		})
	}
}

func TestReadResponseRefuses(t *testing.T) {
	many := strings.Repeat("X-A: b\r\n", maxHeaderFields+1)
	tests := []struct{ name, raw string }{
		{"both lengths", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"},
		{"differing lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"},
		{"empty length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"},
		{"gzip encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{"two encodings", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"not HTTP", "SSH-2.0-OpenSSH_9.6\r\n\r\n"},
		{"HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n"},
		{"status 099", "HTTP/1.1 099 Low\r\n\r\n"},
		{"status +20", "HTTP/1.1 +20 OK\r\n\r\n"},
		{"two spaces", "HTTP/1.1  200 OK\r\n\r\n"},
		{"status 2000", "HTTP/1.1 2000 OK\r\n\r\n"},
		{"control in reason", "HTTP/1.1 200 O\x01K\r\n\r\n"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n"},
		{"space before colon", "HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n"},
		{"no colon", "HTTP/1.1 200 OK\r\nX-A\r\n\r\n"},
		{"empty name", "HTTP/1.1 200 OK\r\n: b\r\n\r\n"},
		{"CR in value", "HTTP/1.1 200 OK\r\nX-A: b\rc\r\n\r\n"},
		{"bad trailer name", "HTTP/1.1 200 OK\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"too many fields", "HTTP/1.1 200 OK\r\n" + many + "\r\n"},
		{"head too large", "HTTP/1.1 200 OK\r\nX-A: " + strings.Repeat("b", maxHeadBytes) + "\r\n\r\n"},
		{"cut head", "HTTP/1.1 200 OK\r\nX-A: b\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readWith(tt.raw, "GET", readOwn)
			if err == nil {
				t.Fatalf("%q: read as %+v; want an error", tt.raw, *got)
			}
			if tt.name != "cut head" && !protocolError(err) {
				t.Errorf("%q: %v is not a protocol error", tt.raw, err)
			}
		})
	}
}

func TestReadHeadNothingRead(t *testing.T) {
	_, err := readHead(bufio.NewReader(strings.NewReader("")))
	var nr *nothingReadError
	if !errors.As(err, &nr) || !errors.Is(err, io.EOF) || protocolError(err) {
		t.Errorf("readHead at EOF: %v; want a nothingReadError of io.EOF", err)
	}
}

// FuzzReadResponse: the reader never panics, and what it accepts net/http
// reads the same way.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.0 304 Not Modified\nconnection: keep-alive\npragma: no-cache\n\n"), true)
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nrest"), false)
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		_, _ = checkLikeNetHTTP(t, string(raw), method)
	})
}
