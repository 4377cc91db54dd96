package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
)

// maxChunkLine bounds a chunk-size line (with extensions) or a trailer
// line of a chunked request body.
const maxChunkLine = 4 << 10

// maxDiscard is how much of a body the handler left unread is read and
// dropped to keep the connection; a longer rest closes it, as net/http's
// server does.
const maxDiscard = 256 << 10

// errBadChunk is a chunked body whose framing Envoy's codec refuses.
var errBadChunk = errors.New("malformed chunked request body")

// Chunked body states.
const (
	chunkSize    uint8 = iota // a chunk-size line
	chunkData                 // remain bytes of chunk data
	chunkCRLF                 // the CRLF after chunk data
	chunkTrailer              // trailer lines up to the empty line
)

// h1body reads one request body off its connection's buffer and socket:
// Content-Length or chunked framing, strict as Envoy's codec (bare LF,
// oversized chunk lines and bad sizes end the connection).
type h1body struct {
	hc      *h1conn
	req     *http.Request
	remain  int64 // bytes left of the body, or of the current chunk
	chunked bool
	state   uint8
	done    bool  // the body was read to its end
	err     error // sticky
	expect  bool  // a 100 Continue is owed before the first read
	closed  bool
}

// Read implements io.Reader.
func (b *h1body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.read(p)
}

// Close implements io.Closer; what is left is discarded (or the
// connection closed) when the request ends.
func (b *h1body) Close() error {
	b.closed = true
	return nil
}

func (b *h1body) read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	if b.expect {
		b.expect = false
		b.hc.resp.continue100()
	}
	if !b.chunked {
		return b.readData(p)
	}
	for {
		var err error
		switch b.state {
		case chunkData:
			if b.remain > 0 {
				return b.readData(p)
			}
			b.state = chunkCRLF
		case chunkSize:
			err = b.sizeLine()
		case chunkCRLF:
			var line string
			if line, err = b.line(); err == nil && line != "" {
				err = errBadChunk
			}
			b.state = chunkSize
		case chunkTrailer:
			err = b.trailerLine()
		}
		if err != nil {
			return 0, b.fail(err)
		}
		if b.done {
			return 0, io.EOF
		}
	}
}

// readData passes up to remain bytes, from the buffer first.
func (b *h1body) readData(p []byte) (int, error) {
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	hc := b.hc
	var n int
	var err error
	if hc.r < hc.w {
		n = copy(p, (*hc.buf)[hc.r:hc.w])
		hc.r += n
	} else {
		n, err = hc.bodyRead(p)
	}
	b.remain -= int64(n)
	if b.remain == 0 && !b.chunked {
		b.end()
		return n, io.EOF
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, b.fail(err)
	}
	return n, nil
}

// sizeLine reads a chunk-size line.
func (b *h1body) sizeLine() error {
	line, err := b.line()
	if err != nil {
		return err
	}
	if i := strings.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = strings.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return errBadChunk
	}
	var size int64
	for i := range len(line) {
		d, ok := hexVal(line[i])
		if !ok {
			return errBadChunk
		}
		size = size<<4 | int64(d)
	}
	if size == 0 {
		b.state = chunkTrailer
	} else {
		b.state, b.remain = chunkData, size
	}
	return nil
}

// trailerLine reads one trailer field, or the empty line that ends the
// body.
func (b *h1body) trailerLine() error {
	line, err := b.line()
	if err != nil {
		return err
	}
	if line == "" {
		b.end()
		return nil
	}
	name, value, why := splitHeader(line)
	if why != "" {
		return errBadChunk
	}
	if b.req.Trailer == nil {
		b.req.Trailer = http.Header{}
	}
	k := canonicalKey(name)
	b.req.Trailer[k] = append(b.req.Trailer[k], value)
	return nil
}

// line returns the next CRLF-terminated line of the body framing.
func (b *h1body) line() (string, error) {
	hc := b.hc
	for {
		var in []byte
		if hc.buf != nil {
			in = (*hc.buf)[hc.r:hc.w]
		}
		if i := bytes.IndexByte(in, '\n'); i >= 0 {
			if i < 1 || in[i-1] != '\r' || i > maxChunkLine {
				return "", errBadChunk
			}
			s := string(in[:i-1])
			hc.r += i + 1
			return s, nil
		}
		if len(in) > maxChunkLine {
			return "", errBadChunk
		}
		if err := hc.fillBody(); err != nil {
			return "", err
		}
	}
}

// end marks the body complete and lets the connection read on.
func (b *h1body) end() {
	b.done = true
	b.hc.bodyDone()
}

// fail makes err sticky and the connection unusable after this request.
func (b *h1body) fail(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	b.err = err
	b.hc.broken = true
	return err
}

// discard reads and drops what the handler left of the body, up to
// maxDiscard; it reports whether the body ended.
func (b *h1body) discard() bool {
	if b.done {
		return true
	}
	if b.err != nil || b.expect { // a client waiting for 100 Continue sent nothing
		return false
	}
	buf := make([]byte, 4096)
	for total := 0; total < maxDiscard; {
		n, err := b.read(buf)
		total += n
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}
