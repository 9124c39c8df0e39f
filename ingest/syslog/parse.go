package syslog

import (
	"time"

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/ciscoios"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/segwatch/segwatch/ingest/event"
)

// futureSkew is how far ahead of the received time a device timestamp may
// be before it is distrusted.
const futureSkew = 24 * time.Hour

// ParseOptions tune Parse. Zero values take the Config defaults.
type ParseOptions struct {
	// Timezone of RFC 3164 timestamps, which carry none. nil = UTC.
	Timezone *time.Location
	// MaxMessageBytes cuts longer input, marking the event truncated.
	MaxMessageBytes int
	// MaxAge: a device timestamp older than this is replaced by the
	// received time (it would fall out of retention at once).
	MaxAge time.Duration
}

func (o *ParseOptions) fill() {
	if o.Timezone == nil {
		o.Timezone = time.UTC
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
}

// Parser turns one syslog message into an event. It keeps the go-syslog
// state machines, which are not safe for concurrent use, so a Parser
// belongs to one goroutine (each connection and UDP reader has its own).
type Parser struct {
	opts  ParseOptions
	m5424 gosyslog.Machine
	m3164 gosyslog.Machine
	cisco gosyslog.Machine
	// scratch holds a rewritten header (parseLocalISO).
	scratch []byte
}

// NewParser returns a parser for opts.
func NewParser(opts ParseOptions) *Parser {
	opts.fill()
	p := &Parser{opts: opts}
	// No WithYear/WithLocaleTimezone: go-syslog fixes the year when the
	// machine is built and resolves the zone at year 0 (LMT offsets), so
	// RFC 3164 stamps come out as year-0 UTC wall clocks and eventTime
	// places them in the received year and the configured zone.
	p.m5424 = rfc5424.NewMachine(rfc5424.WithBestEffort())
	p.m3164 = rfc3164.NewMachine(rfc3164.WithBestEffort(), rfc3164.WithRFC3339(),
		rfc3164.WithLenientDay(), rfc3164.WithEmbeddedNewlines())
	// Cisco IOS puts "NNN: " and ":" around its timestamp, which the plain
	// RFC 3164 machine cannot read; it is tried when that one finds nothing.
	p.cisco = rfc3164.NewMachine(rfc3164.WithBestEffort(), rfc3164.WithLenientDay(),
		rfc3164.WithEmbeddedNewlines(),
		rfc3164.WithCiscoIOSComponents(ciscoios.DisableSequenceNumber|ciscoios.DisableHostname))
	return p
}

// Parse parses one message with a throw-away Parser; hot paths keep a
// Parser instead.
func Parse(raw []byte, received time.Time, opts ParseOptions) event.Event {
	return NewParser(opts).Parse(raw, received)
}

// Parse turns raw (one syslog message, RFC 5424 or RFC 3164, detected per
// message) into a log event received at received. It never fails: a message
// that does not parse keeps its text in Message and the reason in
// ParseError. raw is not retained.
func (p *Parser) Parse(raw []byte, received time.Time) event.Event {
	truncated := false
	if len(raw) > p.opts.MaxMessageBytes {
		raw, truncated = raw[:p.opts.MaxMessageBytes], true
	}
	return p.parse(raw, received, truncated)
}

func (p *Parser) parse(raw []byte, received time.Time, truncated bool) event.Event {
	received = received.UTC()
	ev := event.Event{
		Kind:      event.KindLog,
		Received:  received,
		Time:      received,
		Facility:  event.NoSeverity,
		Severity:  event.NoSeverity,
		Raw:       string(raw),
		Truncated: truncated,
	}
	body := trimTrailer(raw)
	pri, afterPRI := readPRI(body)
	if afterPRI < 0 {
		ev.Message = trimTrailer(ev.Raw)
		ev.ParseError = "no PRI: not a syslog header"
		return ev
	}
	ev.Facility, ev.Severity = pri/8, pri%8

	var (
		base   *gosyslog.Base
		err    error
		format = "rfc3164"
	)
	if len(body) > afterPRI+1 && body[afterPRI] == '1' && body[afterPRI+1] == ' ' {
		format = "rfc5424"
		m, e := p.m5424.Parse(body)
		err = e
		if sm, ok := m.(*rfc5424.SyslogMessage); ok && sm != nil {
			base = &sm.Base
			if e == nil && sm.StructuredData != nil && len(*sm.StructuredData) > 0 {
				ev.SD = *sm.StructuredData
			}
		}
	} else {
		m, e := p.m3164.Parse(body)
		base, err = base3164(m), e
		if err != nil {
			if b, ts, ok := p.parseLocalISO(body, afterPRI); ok {
				base, err = b, nil
				base.Timestamp = &ts
			}
		}
		if err != nil || base == nil || (base.Timestamp == nil && base.Message == nil) {
			if m2, e2 := p.cisco.Parse(body); e2 == nil {
				if b2 := base3164(m2); b2 != nil && (b2.Timestamp != nil || b2.Message != nil) {
					base, err = b2, nil
				}
			}
		}
		if err == nil && (base == nil || (base.Timestamp == nil && base.Message == nil)) {
			err = errNoHeader
		}
	}

	if base != nil {
		ev.Host = str(base.Hostname)
		ev.App = str(base.Appname)
		ev.ProcID = str(base.ProcID)
		ev.MsgID = str(base.MsgID)
		if base.Timestamp != nil {
			ev.Time = p.eventTime(*base.Timestamp, received)
		}
	}
	if err != nil {
		// Say which grammar the message failed, as go-syslog's errors do not.
		ev.ParseError = format + ": " + err.Error()
		ev.Message = trimTrailer(ev.Raw)
		return ev
	}
	if base.Message != nil {
		ev.Message = trimTrailer(trimBOM(*base.Message))
	}
	return ev
}

// parseLocalISO reads an RFC 3164 message whose timestamp is an ISO 8601
// local time without zone ("2026-12-03T19:44:48", syslog-ng's loggen and
// many embedded stacks), which go-syslog refuses: the stamp is read here in
// the configured zone and the rest of the header by the RFC 3164 machine,
// behind a placeholder stamp.
func (p *Parser) parseLocalISO(body []byte, afterPRI int) (*gosyslog.Base, time.Time, bool) {
	rest := body[afterPRI:]
	end := 0
	for end < len(rest) && rest[end] != ' ' {
		end++
	}
	if end < 19 || end > 29 || end == len(rest) || rest[4] != '-' || rest[10] != 'T' {
		return nil, time.Time{}, false
	}
	ts, err := time.ParseInLocation("2006-01-02T15:04:05", string(rest[:end]), p.opts.Timezone)
	if err != nil {
		return nil, time.Time{}, false
	}
	p.scratch = append(append(append(p.scratch[:0], body[:afterPRI]...), "Jan  1 00:00:00"...), rest[end:]...)
	m, err := p.m3164.Parse(p.scratch)
	b := base3164(m)
	if err != nil || b == nil {
		return nil, time.Time{}, false
	}
	return b, ts, true
}

type parseError string

func (e parseError) Error() string { return string(e) }

const errNoHeader = parseError("no header after PRI")

func base3164(m gosyslog.Message) *gosyslog.Base {
	if sm, ok := m.(*rfc3164.SyslogMessage); ok && sm != nil {
		return &sm.Base
	}
	return nil
}

// eventTime returns the device's timestamp unless it cannot be right:
// devices with unset clocks send 1970 or far-future dates, and an event
// outside [received-MaxAge, received+24h] would be dropped by retention or
// sorted nonsensically. The raw text keeps the original either way.
func (p *Parser) eventTime(t, received time.Time) time.Time {
	if t.Year() == 0 {
		// An RFC 3164 stamp: no year, no zone. It is the received year in
		// the configured zone, unless that is ahead ("Dec 31 23:59:59"
		// received on Jan 1): then last year.
		loc := p.opts.Timezone
		rl := received.In(loc)
		t = time.Date(rl.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc)
		if t.After(received.Add(futureSkew)) {
			t = time.Date(rl.Year()-1, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc)
		}
	}
	t = t.UTC()
	if t.After(received.Add(futureSkew)) || t.Before(received.Add(-p.opts.MaxAge)) {
		return received
	}
	return t
}

// readPRI reads "<N>" with N in 0..191 and returns N and the offset after
// '>', or -1 when there is no valid PRI.
func readPRI(b []byte) (int, int) {
	if len(b) < 3 || b[0] != '<' {
		return 0, -1
	}
	n := 0
	for i := 1; i < len(b) && i <= 4; i++ {
		c := b[i]
		if c == '>' {
			if i == 1 || n > 191 {
				return 0, -1
			}
			return n, i + 1
		}
		if c < '0' || c > '9' {
			return 0, -1
		}
		n = n*10 + int(c-'0')
	}
	return 0, -1
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// trimTrailer strips trailing LF, CR and NUL, which senders append as frame
// trailers and which are never part of the message.
func trimTrailer[T string | []byte](s T) T {
	i := len(s)
	for i > 0 && (s[i-1] == '\n' || s[i-1] == '\r' || s[i-1] == 0) {
		i--
	}
	return s[:i]
}

const bom = "\xEF\xBB\xBF"

// trimBOM drops the UTF-8 byte order mark RFC 5424 allows before MSG.
func trimBOM(s string) string {
	if len(s) >= 3 && s[:3] == bom {
		return s[3:]
	}
	return s
}
