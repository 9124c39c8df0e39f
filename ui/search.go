package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/gofiber/fiber/v2"

	"github.com/segwatch/segwatch/index"
)

// Search parameter limits. Over a limit is a 400, not a silent clamp: a
// client asking for 50 000 hits and quietly getting 10 000 would page wrongly.
const (
	DefaultLimit  = 100
	MaxLimit      = 10000
	MaxOffset     = 100000 // deeper paging costs the index memory per page; narrow the time range instead
	MaxQueryBytes = 4096
	DefaultRange  = 24 * time.Hour
)

// ParamError is a bad query parameter; the API answers 400 with both fields.
type ParamError struct {
	Param string // the parameter's name, e.g. "from"
	Msg   string
}

// Error renders "param: message".
func (e *ParamError) Error() string { return e.Param + ": " + e.Msg }

func badParam(param, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// parseSearchParams turns the query parameters of GET /api/v1/search into a
// request. get returns a parameter's value, "" when absent. It is pure
// (now is passed in) and fuzzed.
func parseSearchParams(get func(string) string, now time.Time) (index.Request, error) {
	r := index.Request{Limit: DefaultLimit, Order: index.OrderNewest}

	q := get("q")
	if len(q) > MaxQueryBytes {
		return r, badParam("q", "longer than %d bytes", MaxQueryBytes)
	}
	if !utf8.ValidString(q) {
		return r, badParam("q", "not valid UTF-8")
	}
	if strings.TrimSpace(q) != "" {
		// Check the syntax here so a typo is a 400 whichever index runs.
		if _, err := query.NewQueryStringQuery(q).Parse(); err != nil {
			return r, badParam("q", "%s", firstLine(err.Error()))
		}
		r.Query = q
	}

	var err error
	to, from := now, time.Time{}
	if v := get("to"); v != "" {
		if to, err = parseTime(v, now); err != nil {
			return r, badParam("to", "%v", err)
		}
	}
	if v := get("from"); v != "" {
		if from, err = parseTime(v, now); err != nil {
			return r, badParam("from", "%v", err)
		}
	} else {
		from = to.Add(-DefaultRange)
	}
	if !from.Before(to) {
		return r, badParam("from", "must be before to (%s >= %s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	r.From, r.To = from, to

	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return r, badParam("limit", "must be an integer from 1 to %d, got %q", MaxLimit, v)
		}
		r.Limit = n
	}
	if v := get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxOffset {
			return r, badParam("offset", "must be an integer from 0 to %d, got %q", MaxOffset, v)
		}
		r.Offset = n
	}
	switch v := get("order"); v {
	case "", index.OrderNewest:
	case index.OrderOldest:
		r.Order = index.OrderOldest
	default:
		return r, badParam("order", "must be %q or %q, got %q", index.OrderNewest, index.OrderOldest, v)
	}
	return r, nil
}

// parseTime accepts RFC 3339 with or without a fraction, a bare date
// (midnight UTC), "now", and "now-DURATION" / "now+DURATION" where DURATION
// is a Go duration ("90m", "1h30m") or whole days or weeks ("7d", "2w").
func parseTime(v string, now time.Time) (time.Time, error) {
	if rest, ok := strings.CutPrefix(v, "now"); ok {
		if rest == "" {
			return now, nil
		}
		sign := rest[0]
		if sign != '-' && sign != '+' {
			return time.Time{}, fmt.Errorf("want now, now-DURATION or now+DURATION, got %q", v)
		}
		d, err := parseRelative(rest[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("%q: %w", v, err)
		}
		if sign == '-' {
			d = -d
		}
		return now.Add(d), nil
	}
	// time.RFC3339 also accepts a fraction when parsing.
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want RFC 3339 (2026-12-03T10:00:00Z), a date or now-1h, got %q", v)
}

// maxRelative keeps now±d far from time.Duration's overflow.
const maxRelative = 100 * 365 * 24 * time.Hour

func parseRelative(s string) (time.Duration, error) {
	var d time.Duration
	if n, unit, ok := cutUnit(s); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 36500 {
			return 0, errors.New("bad number of days or weeks")
		}
		d = time.Duration(days) * unit
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, errors.New("bad duration")
		}
	}
	if d < 0 || d > maxRelative {
		return 0, errors.New("duration out of range")
	}
	return d, nil
}

// cutUnit splits "7d" or "2w", which time.ParseDuration does not know.
func cutUnit(s string) (string, time.Duration, bool) {
	switch {
	case strings.HasSuffix(s, "d"):
		return s[:len(s)-1], 24 * time.Hour, true
	case strings.HasSuffix(s, "w"):
		return s[:len(s)-1], 7 * 24 * time.Hour, true
	}
	return "", 0, false
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// invalidQuery is how a Searcher says that the query, not the index, is at
// fault (see Searcher).
type invalidQuery interface{ InvalidQuery() bool }

func (s *Server) handleSearch(c *fiber.Ctx) error {
	req, err := parseSearchParams(func(k string) string { return c.Query(k) }, s.now())
	var pe *ParamError
	if errors.As(err, &pe) {
		return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": pe.Error(), "param": pe.Param})
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.SearchTimeout)
	defer cancel()
	start := s.now()
	res, err := s.search.Search(ctx, req)
	if err != nil {
		var iq invalidQuery
		if errors.As(err, &iq) && iq.InvalidQuery() {
			return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": "q: " + firstLine(err.Error()), "param": "q"})
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fiber.NewError(fiber.StatusGatewayTimeout, "search took longer than "+s.cfg.SearchTimeout.String()+"; narrow the time range or the query")
		}
		return fmt.Errorf("search: %w", err)
	}
	took := res.Took
	if took <= 0 {
		took = s.now().Sub(start)
	}
	body, err := appendSearchResult(make([]byte, 0, 512+400*len(res.Hits)), res.Total, took, res.Hits)
	if err != nil {
		return fmt.Errorf("encode search result: %w", err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(body)
}

// appendSearchResult renders {"total","took_ms","hits"}. Each hit is the
// event's own JSON (its MarshalJSON decides which fields a log or a flow
// has) with "fragments" spliced in before the closing brace; embedding the
// event in a struct would lose that MarshalJSON.
func appendSearchResult(b []byte, total int, took time.Duration, hits []index.Hit) ([]byte, error) {
	b = append(b, `{"total":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, `,"took_ms":`...)
	b = strconv.AppendInt(b, took.Milliseconds(), 10)
	b = append(b, `,"hits":[`...)
	for i, h := range hits {
		if i > 0 {
			b = append(b, ',')
		}
		// Calling MarshalJSON directly skips json.Marshal's second pass that
		// re-validates and compacts the method's output (a third of the cost).
		ev, err := h.Event.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", h.Event.ID, err)
		}
		if len(h.Fragments) == 0 || len(ev) < 2 || ev[len(ev)-1] != '}' {
			b = append(b, ev...)
			continue
		}
		b = append(b, ev[:len(ev)-1]...)
		if len(ev) > 2 { // not "{}"
			b = append(b, ',')
		}
		b = append(b, `"fragments":`...)
		frags, err := json.Marshal(h.Fragments)
		if err != nil {
			return nil, fmt.Errorf("fragments of %s: %w", h.Event.ID, err)
		}
		b = append(b, frags...)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	return b, nil
}
