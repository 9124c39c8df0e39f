package match

import (
	"html"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Highlighting limits: a hit shows at most maxFragments fragments of about
// fragmentSize bytes, each starting up to fragmentLead bytes before its
// first match.
const (
	maxFragments = 3
	fragmentSize = 150
	fragmentLead = 40
)

// highlighter is one positive message matcher: a phrase (one or more
// tokens) or a token pattern.
type highlighter struct {
	toks []string
	re   *regexp.Regexp
}

type span struct{ start, end int }

// Highlight returns up to 3 fragments of message (about 150 bytes each)
// around the tokens matched by the query's message terms, phrases and
// patterns (those not under a must-not), with each match wrapped in
// <mark>…</mark> and the rest HTML-escaped; "…" marks where a fragment cuts
// the message. It returns nil when nothing in the message matched (the
// event matched on another field).
func (q *Query) Highlight(message string) []string {
	if len(q.hl) == 0 {
		return nil
	}
	spans := q.spans(message)
	if len(spans) == 0 {
		return nil
	}
	var frags []string
	for i := 0; i < len(spans) && len(frags) < maxFragments; {
		start := snapBack(message, max(0, spans[i].start-fragmentLead))
		limit := start + fragmentSize
		j := i + 1
		for j < len(spans) && spans[j].end <= limit {
			j++
		}
		end := max(spans[j-1].end, min(len(message), limit))
		end = snapBack(message, end)
		end = max(end, spans[j-1].end)
		frags = append(frags, render(message, start, end, spans[i:j]))
		i = j
	}
	return frags
}

// spans finds the matched byte ranges of message, in order, merged.
func (q *Query) spans(message string) []span {
	var out []span
	add := func(s span) {
		if n := len(out); n > 0 && s.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, s.end)
			return
		}
		out = append(out, s)
	}
	for i := 0; ; {
		st, e := nextToken(message, i)
		if st < 0 {
			break
		}
		for _, h := range q.hl {
			if h.re != nil {
				if h.re.MatchString(lower(message[st:e])) {
					add(span{st, e})
				}
				continue
			}
			if !eqLower(message[st:e], h.toks[0]) {
				continue
			}
			end, ok := phraseEnd(message, e, h.toks[1:])
			if ok {
				add(span{st, end})
			}
		}
		i = e
	}
	return out
}

// phraseEnd is phraseAt that also returns where the phrase ends.
func phraseEnd(s string, i int, toks []string) (int, bool) {
	for _, t := range toks {
		st, e := nextToken(s, i)
		if st < 0 || !eqLower(s[st:e], t) {
			return 0, false
		}
		i = e
	}
	return i, true
}

// snapBack moves i back to the start of a UTF-8 sequence.
func snapBack(s string, i int) int {
	for i > 0 && i < len(s) && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}

func render(msg string, start, end int, spans []span) string {
	var b strings.Builder
	if start > 0 {
		b.WriteString("…")
	}
	at := start
	for _, s := range spans {
		b.WriteString(html.EscapeString(msg[at:s.start]))
		b.WriteString("<mark>")
		b.WriteString(html.EscapeString(msg[s.start:s.end]))
		b.WriteString("</mark>")
		at = s.end
	}
	b.WriteString(html.EscapeString(msg[at:end]))
	if end < len(msg) {
		b.WriteString("…")
	}
	return b.String()
}
