package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/segwatch/segwatch/ingest/event"
)

type frameOut struct {
	text      string
	truncated bool
}

// frames runs the framer over input to its end and returns the frames and
// the final error (nil for a clean EOF).
func frames(r io.Reader, max, hard int) ([]frameOut, error) {
	f := newFramer(r, max, hard)
	var out []frameOut
	for {
		b, trunc, err := f.next()
		if b != nil {
			out = append(out, frameOut{string(b), trunc})
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func TestFramer(t *testing.T) {
	const max = 500
	f := func(input string, wantErr error, want ...frameOut) {
		t.Helper()
		// Whole and byte by byte (every frame split across reads).
		for _, r := range []io.Reader{strings.NewReader(input), iotest.OneByteReader(strings.NewReader(input))} {
			got, err := frames(r, max, 2000)
			if !errors.Is(err, wantErr) {
				t.Errorf("%.60q: error %v, want %v", input, err, wantErr)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%.60q:\n got  %.200v\n want %.200v", input, got, want)
			}
		}
	}
	ok := func(s string) frameOut { return frameOut{s, false} }
	cut := func(s string) frameOut { return frameOut{s, true} }
	long := strings.Repeat("a", 1500)

	// Octet counting.
	f("5 hello6 world!", nil, ok("hello"), ok("world!"))
	f("11 <13>a\nb c d11 <13>second\n\n", nil, ok("<13>a\nb c d"), ok("<13>second\n"))
	f("5 hello\n5 world\r\n", nil, ok("hello"), ok("world")) // trailers tolerated
	f("1500 "+long, nil, cut(long[:max]))                    // over max: cut, stream stays in sync
	f("1500 "+long+"3 abc", nil, cut(long[:max]), ok("abc"))
	f("10 short", nil, cut("short")) // stream ends inside a frame: kept, marked
	f("99999999999 x", errBadFrame)
	f("5 hello99999999999 x", errBadFrame, ok("hello"))
	f("2001 x", errBadFrame) // over the hard limit
	f("5hello", errBadFrame) // no space after the count
	f("5 hello x", errBadFrame, ok("hello"))
	f("5 hello0 ", errBadFrame, ok("hello")) // zero-length frames do not exist
	f("12", io.ErrUnexpectedEOF)

	// LF framing.
	f("<13>one\n<13>two\r\n<13>three", nil, ok("<13>one"), ok("<13>two\r"), ok("<13>three"))
	f("\n\n<13>after empty lines\n\r\n", nil, ok("<13>after empty lines"))
	f("<13>"+long+"\n<13>next\n", nil, cut(("<13>" + long)[:max]), ok("<13>next"))
	f("0 not a count\n", nil, ok("0 not a count"))
	f("", nil)
}

func TestFramerLongLinesBeyondBuffer(t *testing.T) {
	const max = 64 << 10
	line := "<13>" + strings.Repeat("x", 70<<10)
	for _, in := range []string{
		line + "\n<13>next\n",
		fmt.Sprintf("%d %s9 <13>next\n", len(line), line),
	} {
		got, err := frames(strings.NewReader(in), max, HardFrameLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || len(got[0].text) != max || !got[0].truncated || got[0].text != line[:max] || strings.TrimSpace(got[1].text) != "<13>next" {
			t.Errorf("%.10q: got %d frames, first %d bytes truncated=%v", in, len(got), len(got[0].text), got[0].truncated)
		}
	}
	// A frame of exactly max bytes beyond the read buffer is whole.
	exact := strings.Repeat("y", max)
	got, err := frames(strings.NewReader(fmt.Sprintf("%d %s", max, exact)), max, HardFrameLimit)
	if err != nil || len(got) != 1 || got[0].truncated || got[0].text != exact {
		t.Errorf("frame of exactly max bytes: %d frames, err %v", len(got), err)
	}
}

func TestFramerReady(t *testing.T) {
	f := func(buffered string, want bool) {
		t.Helper()
		fr := newFramer(strings.NewReader(buffered), 500, 2000)
		// Detect the mode and fill the buffer.
		if _, err := fr.r.Peek(len(buffered)); err != nil {
			t.Fatal(err)
		}
		fr.mode = modeLF
		if buffered[0] >= '1' && buffered[0] <= '9' {
			fr.mode = modeOctet
		}
		if got := fr.ready(); got != want {
			t.Errorf("ready(%q) = %v, want %v", buffered, got, want)
		}
	}
	f("5 hello", true)
	f("5 hell", false)
	f("12", false)
	f("1234567890", true) // too long a count: next fails at once
	f("5x", true)
	f("no newline", false)
	f("a line\n", true)
}

func FuzzFraming(f *testing.F) {
	for _, s := range []string{
		"5 hello6 world!",
		"11 <13>a\nb c d",
		"99999999999 x",
		"<13>one\n<13>two\r\n",
		"1500 " + strings.Repeat("a", 1500),
		"<34>1 2026-12-03T18:14:15Z host app - - - x\n",
	} {
		f.Add([]byte(s))
	}
	const max, hard = 600, 4000
	f.Fuzz(func(t *testing.T, data []byte) {
		p := NewParser(ParseOptions{MaxMessageBytes: max})
		fr := newFramer(iotest.HalfReader(bytes.NewReader(data)), max, hard)
		total := 0
		for i := 0; ; i++ {
			b, trunc, err := fr.next()
			if len(b) > max {
				t.Fatalf("frame of %d bytes, max %d", len(b), max)
			}
			if b != nil {
				total += len(b)
				ev := p.parse(b, testNow, trunc)
				if ev.Raw != string(b) {
					t.Fatalf("raw %q, frame %q", ev.Raw, b)
				}
			}
			if err != nil {
				break
			}
			if i > len(data) {
				t.Fatalf("more frames than input bytes")
			}
		}
		if total > len(data) {
			t.Fatalf("frames hold %d bytes, input %d", total, len(data))
		}
		if cap(fr.big) > max {
			t.Fatalf("assembly buffer grew to %d, max %d", cap(fr.big), max)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"<165>1 2026-12-03T18:14:15.003Z host app - ID47 [a@1 b=\"c\"] \xEF\xBB\xBFmsg",
		"<14>1 - - - - - -",
		"<34>Dec  3 18:14:15 host su[230]: x",
		"<189>237: *Dec  3 18:46:03.295: %SYS-5-CONFIG_I: x",
		"<13>2026-12-03T10:00:00.123+01:00 host app[1]: hi",
		"no pri",
		"\x00\xff",
		"<13>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1000
		ev := Parse(data, testNow, ParseOptions{MaxMessageBytes: max})
		if len(ev.Raw) > max || (len(data) > max) != ev.Truncated {
			t.Fatalf("raw %d bytes truncated=%v for %d input bytes", len(ev.Raw), ev.Truncated, len(data))
		}
		if ev.Severity < event.NoSeverity || ev.Severity > 7 || ev.Facility < event.NoSeverity || ev.Facility > 23 {
			t.Fatalf("facility %d severity %d", ev.Facility, ev.Severity)
		}
		if (ev.Facility == event.NoSeverity) != (ev.Severity == event.NoSeverity) {
			t.Fatalf("facility %d severity %d", ev.Facility, ev.Severity)
		}
		if ev.Time.After(testNow.Add(futureSkew)) || ev.Time.Before(testNow.Add(-DefaultMaxAge)) {
			t.Fatalf("time %v out of range", ev.Time)
		}
		if ev.ParseError == "" && ev.Facility == event.NoSeverity {
			t.Fatalf("parsed without a PRI")
		}
		if ev.Kind != event.KindLog || !ev.Received.Equal(testNow) {
			t.Fatalf("kind %q received %v", ev.Kind, ev.Received)
		}
	})
}
