package match

import (
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/segwatch/segwatch/ingest/event"
)

// node is one piece of a compiled query. match is the exact per-event test;
// block returns a Bleve query over block documents that selects at least
// every block holding an event for which match is true, or nil when it
// cannot narrow the blocks down (every block is a candidate).
type node interface {
	match(ev *event.Event) bool
	block() query.Query
}

// allNode matches everything ("", "*").
type allNode struct{}

func (allNode) match(*event.Event) bool { return true }
func (allNode) block() query.Query      { return nil }

// noneNode matches nothing (a text term without any token, an empty range).
type noneNode struct{}

func (noneNode) match(*event.Event) bool { return false }
func (noneNode) block() query.Query      { return query.NewMatchNoneQuery() }

// boolNode is bleve's query-string boolean: every must, no mustNot, and at
// least one should when there is no must (with a must, should clauses only
// rank in bleve, and rank means nothing here).
type boolNode struct {
	must, should, not []node
}

func (n *boolNode) match(ev *event.Event) bool {
	for _, c := range n.must {
		if !c.match(ev) {
			return false
		}
	}
	for _, c := range n.not {
		if c.match(ev) {
			return false
		}
	}
	if len(n.must) == 0 && len(n.should) > 0 {
		for _, c := range n.should {
			if c.match(ev) {
				return true
			}
		}
		return false
	}
	return true
}

// block drops the must-not clauses: a block holding an excluded event may
// hold other events that match.
func (n *boolNode) block() query.Query {
	if len(n.must) > 0 {
		return conj(n.must)
	}
	return disj(n.should)
}

// conj is the conjunction of the block queries of ns, leaving out those that
// cannot narrow down; nil when none can.
func conj(ns []node) query.Query {
	var qs []query.Query
	for _, c := range ns {
		if q := c.block(); q != nil {
			qs = append(qs, q)
		}
	}
	switch len(qs) {
	case 0:
		return nil
	case 1:
		return qs[0]
	}
	return query.NewConjunctionQuery(qs)
}

// disj is the disjunction of the block queries of ns; nil (every block) as
// soon as one of them cannot narrow down.
func disj(ns []node) query.Query {
	var qs []query.Query
	for _, c := range ns {
		q := c.block()
		if q == nil {
			return nil
		}
		qs = append(qs, q)
	}
	switch len(qs) {
	case 0:
		return nil
	case 1:
		return qs[0]
	}
	return query.NewDisjunctionQuery(qs)
}

// orNode matches when any child does: an unqualified term over the default
// fields. ipv4 is set when that term is an IPv4 address countable through
// ip_count (see CountTerm).
type orNode struct {
	kids []node
	ipv4 string
}

func (n *orNode) match(ev *event.Event) bool {
	for _, c := range n.kids {
		if c.match(ev) {
			return true
		}
	}
	return false
}

func (n *orNode) block() query.Query { return disj(n.kids) }

func termQuery(field, term string) query.Query {
	q := query.NewTermQuery(term)
	q.SetField(field)
	return q
}

func regexpQuery(field, pattern string) query.Query {
	q := query.NewRegexpQuery(pattern)
	q.SetField(field)
	return q
}

// kwTerm: a keyword field equals term (lower case) ignoring case.
type kwTerm struct {
	f    *field
	term string
}

func (n *kwTerm) match(ev *event.Event) bool {
	v := n.f.str(ev)
	return v != "" && eqLower(v, n.term)
}

func (n *kwTerm) block() query.Query {
	if !n.f.indexed {
		return nil
	}
	return termQuery(n.f.name, n.term)
}

// pattern is a compiled wildcard or regexp: re for Match (anchored), expr
// for bleve's regexp query (which anchors by itself).
type pattern struct {
	re     *regexp.Regexp
	expr   string
	prefix string // literal lower-case prefix every match starts with
	// fold, for wildcards only, is re made case-insensitive: on an ASCII
	// value it answers exactly what re answers on the lower-cased value,
	// without lower-casing (allocating).
	fold *regexp.Regexp
}

func newPattern(re *regexp.Regexp, expr string) pattern {
	p, _ := re.LiteralPrefix()
	if p != strings.ToLower(p) {
		p = "" // cannot match lower-cased text anyway; keep the check simple
	}
	return pattern{re: re, expr: expr, prefix: p}
}

// matches reports whether lower(v) matches, lower-casing (allocating) only
// values that pass the cheap prefix check.
func (p *pattern) matches(v string) bool {
	if p.prefix != "" && !hasPrefixFold(v, p.prefix) {
		return false
	}
	if p.fold != nil && isASCII(v) {
		return p.fold.MatchString(v)
	}
	return p.re.MatchString(lower(v))
}

// kwPattern: a keyword field's lower-cased value matches a pattern.
type kwPattern struct {
	f *field
	p pattern
}

func (n *kwPattern) match(ev *event.Event) bool {
	v := n.f.str(ev)
	return v != "" && n.p.matches(v)
}

func (n *kwPattern) block() query.Query {
	if !n.f.indexed {
		return nil
	}
	return regexpQuery(n.f.name, n.p.expr)
}

// textPhrase: the field's tokens contain toks adjacent and in order (one
// token: a term).
type textPhrase struct {
	f    *field
	toks []string
	pre  string // the longest ASCII token, for containsFoldASCII; "" for none
	// preExact: pre has no ASCII letter (an address, a number), so case
	// folding cannot change whether s holds it (no rune lower-cases to an
	// ASCII digit or punctuation) and strings.Contains is exact and fast.
	preExact bool
}

func newTextPhrase(f *field, toks []string) *textPhrase {
	n := &textPhrase{f: f, toks: toks}
	for _, t := range toks {
		if len(t) > len(n.pre) && isASCII(t) {
			n.pre = t
		}
	}
	n.preExact = n.pre != "" && !hasASCIILetter(n.pre)
	return n
}

func (n *textPhrase) match(ev *event.Event) bool {
	s := n.f.str(ev)
	switch {
	case n.preExact:
		if !strings.Contains(s, n.pre) {
			return false
		}
	case n.pre != "":
		if found, ascii := containsFoldASCII(s, n.pre); ascii && !found {
			return false
		}
	}
	return hasPhrase(s, n.toks)
}

// hasASCIILetter reports whether s holds an ASCII letter.
func hasASCIILetter(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; 'a' <= c && c <= 'z' {
			return true
		}
	}
	return false
}

// hasPhrase reports whether the tokens of s contain toks consecutively.
func hasPhrase(s string, toks []string) bool {
	for i := 0; ; {
		st, e := nextToken(s, i)
		if st < 0 {
			return false
		}
		if eqLower(s[st:e], toks[0]) && phraseAt(s, e, toks[1:]) {
			return true
		}
		i = e
	}
}

// phraseAt reports whether the tokens following position i are toks.
func phraseAt(s string, i int, toks []string) bool {
	for _, t := range toks {
		st, e := nextToken(s, i)
		if st < 0 || !eqLower(s[st:e], t) {
			return false
		}
		i = e
	}
	return true
}

// block is the conjunction of the phrase's distinct terms: without term
// vectors bleve cannot check adjacency, Match does.
func (n *textPhrase) block() query.Query {
	var qs []query.Query
	seen := make(map[string]bool, len(n.toks))
	for _, t := range n.toks {
		if !seen[t] {
			seen[t] = true
			qs = append(qs, termQuery(n.f.name, t))
		}
	}
	if len(qs) == 1 {
		return qs[0]
	}
	return query.NewConjunctionQuery(qs)
}

// textPattern: some token of a text field matches a pattern.
type textPattern struct {
	f *field
	p pattern
}

func (n *textPattern) match(ev *event.Event) bool {
	s := n.f.str(ev)
	for i := 0; ; {
		st, e := nextToken(s, i)
		if st < 0 {
			return false
		}
		if n.p.matches(s[st:e]) {
			return true
		}
		i = e
	}
}

func (n *textPattern) block() query.Query { return regexpQuery(n.f.name, n.p.expr) }

// numRange: a numeric field is present and within bounds. Bounds are
// float64 as bleve parses them; lo/hi are the inclusive integer bounds
// derived from them, which is all an integer field needs.
type numRange struct {
	f      *field
	lo, hi uint64
}

func (n *numRange) match(ev *event.Event) bool {
	v, ok := n.f.num(ev)
	return ok && v >= n.lo && v <= n.hi
}

func (n *numRange) block() query.Query {
	lo, hi := n.f.numTerm(n.lo), n.f.numTerm(n.hi) // numTerm clamps to max
	if lo == hi {
		return termQuery(n.f.name, lo)
	}
	return termRange(n.f.name, lo, hi)
}

// intBounds turns bleve's float bounds into inclusive integer bounds over
// [0, MaxUint64]; ok is false when no integer satisfies them.
func intBounds(minV, maxV *float64, minIncl, maxIncl *bool) (lo, hi uint64, ok bool) {
	const top = float64(math.MaxUint64)
	flo, fhi := 0.0, top
	if minV != nil {
		m := *minV
		if math.IsNaN(m) {
			return 0, 0, false
		}
		c := math.Ceil(m)
		if c == m && (minIncl == nil || !*minIncl) {
			c++
		}
		flo = math.Max(c, 0)
	}
	if maxV != nil {
		m := *maxV
		if math.IsNaN(m) {
			return 0, 0, false
		}
		f := math.Floor(m)
		if f == m && (maxIncl == nil || !*maxIncl) {
			f--
		}
		fhi = math.Min(f, top)
	}
	if flo > fhi {
		return 0, 0, false
	}
	lo, hi = floatToUint(flo), floatToUint(fhi)
	return lo, hi, lo <= hi
}

func floatToUint(f float64) uint64 {
	if f >= float64(math.MaxUint64) {
		return math.MaxUint64
	}
	if f <= 0 {
		return 0
	}
	return uint64(f)
}

// numExists: the numeric field is present (field:*).
type numExists struct{ f *field }

func (n *numExists) match(ev *event.Event) bool {
	_, ok := n.f.num(ev)
	return ok
}

func (n *numExists) block() query.Query { return regexpQuery(n.f.name, ".*") }

// timeRange: a time field within [start, end] with open or closed ends; a
// zero bound is open.
type timeRange struct {
	f                  *field
	start, end         time.Time
	startIncl, endIncl bool
	hasStart, hasEnd   bool
}

func (n *timeRange) match(ev *event.Event) bool {
	t := n.f.tim(ev)
	if n.hasStart {
		if c := t.Compare(n.start); c < 0 || c == 0 && !n.startIncl {
			return false
		}
	}
	if n.hasEnd {
		if c := t.Compare(n.end); c > 0 || c == 0 && !n.endIncl {
			return false
		}
	}
	return true
}

func (n *timeRange) block() query.Query {
	if !n.f.indexed {
		return nil
	}
	var from, to time.Time
	if n.hasStart {
		from = n.start
	}
	if n.hasEnd {
		to = n.end
	}
	if from.IsZero() && to.IsZero() {
		return nil
	}
	return TimeRange(from, to)
}

// boolTerm: truncated:true / truncated:false.
type boolTerm struct {
	f    *field
	want bool
}

func (n *boolTerm) match(ev *event.Event) bool { return n.f.boolean(ev) == n.want }

// block: only true is indexed, so false cannot narrow down.
func (n *boolTerm) block() query.Query {
	if !n.want {
		return nil
	}
	return termQuery(n.f.name, "true")
}

// sdMatch: structured data: some element/param whose "<id>.<param>" equals
// path (ignoring case) has a value equal to term, or matching p.
type sdMatch struct {
	path string // lower case
	term string // lower case, when p.re is nil
	p    pattern
}

func (n *sdMatch) match(ev *event.Event) bool {
	for id, params := range ev.SD {
		lid := lower(id)
		if len(lid) >= len(n.path) || n.path[len(lid)] != '.' || !strings.HasPrefix(n.path, lid) {
			continue
		}
		rest := n.path[len(lid)+1:]
		for p, v := range params {
			if !eqLower(p, rest) {
				continue
			}
			if n.p.re != nil {
				if n.p.matches(v) {
					return true
				}
			} else if eqLower(v, n.term) {
				return true
			}
		}
	}
	return false
}

func (n *sdMatch) block() query.Query {
	prefix := n.path + "="
	if n.p.re != nil {
		return regexpQuery("sd", regexp.QuoteMeta(prefix)+"(?:"+n.p.expr+")")
	}
	return termQuery("sd", prefix+n.term)
}
