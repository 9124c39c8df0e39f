package syslog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// readBufferSize is the per-connection read buffer. Frames up to this size
// are handed to the parser without a copy; larger ones are assembled in a
// separate buffer that grows up to MaxMessageBytes.
const readBufferSize = 16 << 10

// maxCountDigits is how many digits an octet count may have: enough for
// any count up to the hard limit, and few enough that the number cannot
// overflow.
const maxCountDigits = 9

// Framing modes of a stream, detected from its first byte.
const (
	modeUnknown = iota
	modeOctet   // RFC 6587 §3.4.1 octet counting: "LEN SP MSG"
	modeLF      // RFC 6587 §3.4.2 non-transparent framing, LF trailer
)

// errBadFrame is a framing violation after which the stream cannot be
// resynchronized: the connection is closed.
var errBadFrame = errors.New("bad frame")

// framer splits a TCP/TLS byte stream into syslog messages (RFC 6587). The
// framing is detected per connection from the first byte: a digit 1-9 means
// octet counting, anything else LF framing. Memory is bounded: an octet
// count is validated before anything is read for it, and no frame keeps
// more than max bytes (the rest is read and discarded, the frame marked
// truncated).
type framer struct {
	r    *bufio.Reader
	max  int // longest message kept
	hard int // largest octet count accepted
	mode int
	big  []byte // assembles frames longer than the read buffer
	err  error  // returned by the next call, after a final partial frame
}

func newFramer(r io.Reader, max, hard int) *framer {
	if hard < max {
		hard = max
	}
	return &framer{r: bufio.NewReaderSize(r, readBufferSize), max: max, hard: hard}
}

// next returns the next frame, without its framing. The slice is valid
// until the next call. At the end of the stream it returns io.EOF; a
// framing violation returns an error wrapping errBadFrame. Data cut off by
// the end of the stream is returned as a last frame (marked truncated when
// an octet count promised more), so nothing a sender delivered is lost.
func (f *framer) next() (frame []byte, truncated bool, err error) {
	if f.err != nil {
		return nil, false, f.err
	}
	if cap(f.big) > readBufferSize {
		// Big frames are rare: do not keep up to MaxMessageBytes per
		// connection for them, thousands of connections would add up.
		f.big = nil
	}
	if f.mode == modeUnknown {
		b, err := f.r.Peek(1)
		if err != nil {
			return nil, false, err
		}
		f.mode = modeLF
		if b[0] >= '1' && b[0] <= '9' {
			f.mode = modeOctet
		}
	}
	if f.mode == modeOctet {
		return f.nextOctet()
	}
	return f.nextLF()
}

func (f *framer) nextOctet() ([]byte, bool, error) {
	// Senders differ on whether a trailer follows a counted frame; an LF,
	// CR or NUL between frames carries no data and is skipped.
	c, err := f.r.ReadByte()
	for err == nil && (c == '\n' || c == '\r' || c == 0) {
		c, err = f.r.ReadByte()
	}
	if err != nil {
		return nil, false, err
	}
	if c < '1' || c > '9' {
		return nil, false, fmt.Errorf("%w: octet count expected, got %q", errBadFrame, c)
	}
	n := int(c - '0')
	for digits := 1; ; digits++ {
		c, err = f.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, false, fmt.Errorf("read octet count: %w", err)
		}
		if c == ' ' {
			break
		}
		if c < '0' || c > '9' {
			return nil, false, fmt.Errorf("%w: octet count followed by %q, not a space", errBadFrame, c)
		}
		if digits >= maxCountDigits {
			return nil, false, fmt.Errorf("%w: octet count longer than %d digits", errBadFrame, maxCountDigits)
		}
		n = n*10 + int(c-'0')
	}
	if n > f.hard {
		return nil, false, fmt.Errorf("%w: octet count %d over the limit %d", errBadFrame, n, f.hard)
	}

	keep := min(n, f.max)
	if keep <= f.r.Size() {
		// Fast path: the frame fits the read buffer, no copy.
		frame, err := f.r.Peek(keep)
		if _, derr := f.r.Discard(len(frame)); derr != nil && err == nil {
			err = derr
		}
		if err != nil {
			return f.partial(frame, err)
		}
		if n > keep {
			if _, err := f.r.Discard(n - keep); err != nil {
				f.err = err
			}
		}
		return frame, n > keep, nil
	}
	if cap(f.big) < keep {
		f.big = make([]byte, keep)
	}
	frame := f.big[:keep]
	got, err := io.ReadFull(f.r, frame)
	if err != nil {
		return f.partial(frame[:got], err)
	}
	if n > keep {
		if _, err := f.r.Discard(n - keep); err != nil {
			f.err = err
		}
	}
	return frame, n > keep, nil
}

// partial returns what was read of a counted frame before the stream
// ended or failed, and remembers the error for the next call.
func (f *framer) partial(frame []byte, err error) ([]byte, bool, error) {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	f.err = err
	if len(frame) == 0 {
		return nil, false, err
	}
	return frame, true, nil
}

func (f *framer) nextLF() ([]byte, bool, error) {
	for {
		line, err := f.r.ReadSlice('\n')
		if err == nil {
			line = line[:len(line)-1]
			if len(trimTrailer(line)) == 0 {
				continue // empty line: keep-alive or CRLF leftovers
			}
			if len(line) > f.max {
				return line[:f.max], true, nil
			}
			return line, false, nil
		}
		if err == bufio.ErrBufferFull {
			return f.longLine(line)
		}
		// End of stream (or a read error) with an unterminated last line:
		// hand it over, the error comes next time.
		f.err = err
		if len(trimTrailer(line)) == 0 {
			return nil, false, err
		}
		if len(line) > f.max {
			return line[:f.max], true, nil
		}
		return line, false, nil
	}
}

// longLine assembles a line longer than the read buffer, keeping at most
// max bytes and discarding the rest up to the next LF.
func (f *framer) longLine(first []byte) ([]byte, bool, error) {
	f.big = append(f.big[:0], first[:min(len(first), f.max)]...)
	truncated := len(first) > f.max
	for {
		chunk, err := f.r.ReadSlice('\n')
		if err == nil {
			chunk = chunk[:len(chunk)-1]
		}
		if room := f.max - len(f.big); room > 0 {
			f.big = append(f.big, chunk[:min(len(chunk), room)]...)
			truncated = truncated || len(chunk) > room
		} else if len(chunk) > 0 {
			truncated = true
		}
		switch {
		case err == nil:
			return f.big, truncated, nil
		case err == bufio.ErrBufferFull:
			continue
		default:
			f.err = err
			return f.big, truncated, nil
		}
	}
}

// ready reports whether a whole frame is already buffered, so the caller
// can keep batching without blocking on the network.
func (f *framer) ready() bool {
	n := f.r.Buffered()
	if n == 0 || f.err != nil {
		return false
	}
	b, _ := f.r.Peek(n)
	if f.mode != modeOctet {
		return bytes.IndexByte(b, '\n') >= 0
	}
	for len(b) > 0 && (b[0] == '\n' || b[0] == '\r' || b[0] == 0) {
		b = b[1:]
	}
	count, i := 0, 0
	for ; i < len(b) && isDigit(b[i]); i++ {
		if i == maxCountDigits {
			return true // next reports the bad count without blocking
		}
		count = count*10 + int(b[i]-'0')
	}
	switch {
	case i == len(b):
		return false // count not complete yet
	case i == 0 || b[i] != ' ' || count > f.hard:
		return true // next reports the bad frame without blocking
	}
	return len(b)-i-1 >= count
}
