package match

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/blevesearch/bleve/v2/search/query"
	vregexp "github.com/blevesearch/vellum/regexp"

	"github.com/segwatch/segwatch/ingest/event"
)

// Query is a compiled search query: build it once with Compile, then use
// Block to find candidate blocks, Match to verify each of their events and
// Highlight to mark the message of a hit. A Query is immutable and safe for
// concurrent use.
type Query struct {
	text  string
	root  node
	all   bool
	block query.Query
	hl    []highlighter
}

// Error is a query the user must fix (an HTTP 400): bleve's parser rejected
// it, or it names an unknown field or uses an operator a field does not
// support.
type Error struct {
	Query string
	Msg   string
}

func (e *Error) Error() string { return "query " + strconv.Quote(e.Query) + ": " + e.Msg }

// Compile parses q with bleve's query-string parser and translates it into
// the exact matcher and the block query. An empty or "*" query matches
// everything. Errors are *Error.
func Compile(q string) (*Query, error) {
	text := strings.TrimSpace(q)
	if text == "" || text == "*" {
		return &Query{text: q, root: allNode{}, all: true}, nil
	}
	// Plain clauses are required (AND), unlike bleve's query string where
	// they are optional: analysts read `segment:cameras severity:<=3` as a
	// filter. Alternatives are written with a top-level OR between groups.
	c := compiler{}
	var alts []node
	for _, part := range splitOr(text) {
		if strings.TrimSpace(part) == "" {
			return nil, &Error{Query: q, Msg: "OR needs a clause on each side"}
		}
		parsed, err := query.NewQueryStringQuery(part).Parse()
		if err != nil {
			return nil, &Error{Query: q, Msg: err.Error()}
		}
		alt, err := c.node(requireShould(parsed), false)
		if err != nil {
			var qe *Error
			if errors.As(err, &qe) {
				return nil, err
			}
			return nil, &Error{Query: q, Msg: err.Error()}
		}
		alts = append(alts, alt)
	}
	root := alts[0]
	if len(alts) > 1 {
		root = simplify(&boolNode{should: alts})
	}
	_, all := root.(allNode)
	cq := &Query{text: q, root: root, all: all, hl: c.hl}
	cq.block = root.block()
	return cq, nil
}

// String returns the query text as given to Compile.
func (q *Query) String() string { return q.text }

// MatchAll reports whether the query matches every event (empty, "*"): the
// store can then skip verification.
func (q *Query) MatchAll() bool { return q.all }

// Block returns a Bleve query over block documents that selects every block
// holding at least one event Match accepts (and possibly others). It does
// not include the request's time range: combine it with TimeRange. Must-not
// clauses are left out, phrases become conjunctions of their terms, and
// fields not indexed in blocks (id, received) select every block.
func (q *Query) Block() query.Query {
	if q.block == nil {
		return query.NewMatchAllQuery()
	}
	return q.block
}

// Match reports whether ev satisfies the query exactly.
func (q *Query) Match(ev *event.Event) bool { return q.root.match(ev) }

// compiler carries state through one translation.
type compiler struct {
	hl []highlighter
}

// node translates one bleve query. neg is true under a must-not, where
// terms are not highlighted.
func (c *compiler) node(q query.Query, neg bool) (node, error) {
	switch q := q.(type) {
	case *query.BooleanQuery:
		n := &boolNode{}
		var err error
		if q.Must != nil {
			if n.must, err = c.list(q.Must, neg); err != nil {
				return nil, err
			}
		}
		if q.Should != nil {
			if n.should, err = c.list(q.Should, neg); err != nil {
				return nil, err
			}
		}
		if q.MustNot != nil {
			if n.not, err = c.list(q.MustNot, !neg); err != nil {
				return nil, err
			}
		}
		return simplify(n), nil
	case *query.ConjunctionQuery:
		n := &boolNode{}
		for _, sub := range q.Conjuncts {
			k, err := c.node(sub, neg)
			if err != nil {
				return nil, err
			}
			n.must = append(n.must, k)
		}
		return simplify(n), nil
	case *query.DisjunctionQuery:
		// The parser makes a disjunction of a match and a numeric range
		// for a bare number (severity:3, 443): keep the reading the field
		// calls for.
		if len(q.Disjuncts) == 2 {
			m, ok1 := q.Disjuncts[0].(*query.MatchQuery)
			r, ok2 := q.Disjuncts[1].(*query.NumericRangeQuery)
			if ok1 && ok2 {
				if f := fieldByName[strings.ToLower(m.FieldVal)]; f != nil && f.typ == typeNumber {
					return c.numRange(f, r)
				}
				return c.node(m, neg)
			}
		}
		n := &boolNode{}
		for _, sub := range q.Disjuncts {
			k, err := c.node(sub, neg)
			if err != nil {
				return nil, err
			}
			n.should = append(n.should, k)
		}
		return simplify(n), nil
	case *query.MatchQuery:
		if q.Fuzziness != 0 {
			return nil, errors.New("fuzzy terms (~) are not supported")
		}
		return c.term(q.FieldVal, q.Match, false, neg)
	case *query.MatchPhraseQuery:
		return c.term(q.FieldVal, q.MatchPhrase, true, neg)
	case *query.WildcardQuery:
		return c.wildcard(q.FieldVal, q.Wildcard, neg)
	case *query.RegexpQuery:
		return c.regexp(q.FieldVal, q.Regexp, neg)
	case *query.NumericRangeQuery:
		f, err := lookup(q.FieldVal)
		if err != nil {
			return nil, err
		}
		if f == nil || f.typ != typeNumber {
			return nil, fmt.Errorf("%s is not a numeric field", fieldLabel(q.FieldVal))
		}
		return c.numRange(f, q)
	case *query.DateRangeQuery:
		f, err := lookup(q.FieldVal)
		if err != nil {
			return nil, err
		}
		if f == nil || f.typ != typeTime {
			return nil, fmt.Errorf("%s is not a time field (time, received)", fieldLabel(q.FieldVal))
		}
		n := &timeRange{f: f, start: q.Start.Time, end: q.End.Time}
		n.hasStart, n.hasEnd = !q.Start.IsZero(), !q.End.IsZero()
		n.startIncl = q.InclusiveStart == nil || *q.InclusiveStart
		n.endIncl = q.InclusiveEnd != nil && *q.InclusiveEnd
		return n, nil
	case *query.MatchNoneQuery:
		return noneNode{}, nil
	case *query.MatchAllQuery:
		return allNode{}, nil
	}
	return nil, fmt.Errorf("unsupported query %T", q)
}

// list translates the children of a must/should/must-not clause.
func (c *compiler) list(q query.Query, neg bool) ([]node, error) {
	var subs []query.Query
	switch q := q.(type) {
	case *query.ConjunctionQuery:
		subs = q.Conjuncts
	case *query.DisjunctionQuery:
		subs = q.Disjuncts
	default:
		subs = []query.Query{q}
	}
	out := make([]node, 0, len(subs))
	for _, s := range subs {
		n, err := c.node(s, neg)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// simplify removes trivial boolean wrappers so that Match does less work
// and MatchAll sees "*" through them.
func simplify(n *boolNode) node {
	// A match-all must clause adds nothing; a match-all should clause
	// without must clauses makes the should part true.
	must := n.must[:0:0]
	for _, k := range n.must {
		if _, ok := k.(allNode); !ok {
			must = append(must, k)
		}
	}
	allMust := len(n.must) > 0 && len(must) == 0
	n.must = must
	if len(n.must) == 0 {
		for _, k := range n.should {
			if _, ok := k.(allNode); ok {
				n.should = nil
				break
			}
		}
		if allMust {
			n.should = nil
		}
	} else {
		// With must clauses, should clauses do not filter.
		n.should = nil
	}
	switch {
	case len(n.must) == 0 && len(n.should) == 0 && len(n.not) == 0:
		return allNode{}
	case len(n.must) == 1 && len(n.should) == 0 && len(n.not) == 0:
		return n.must[0]
	case len(n.must) == 0 && len(n.should) == 1 && len(n.not) == 0:
		return n.should[0]
	}
	return n
}

// lookup finds a field by its event JSON name (ignoring case). It returns
// nil, nil for an unqualified term and sdField for sd.<id>.<param>.
func lookup(name string) (*field, error) {
	if name == "" {
		return nil, nil
	}
	low := strings.ToLower(name)
	if f := fieldByName[low]; f != nil {
		return f, nil
	}
	if strings.HasPrefix(low, "sd.") {
		return fieldByName["sd"], nil
	}
	return nil, fmt.Errorf("unknown field %q", name)
}

func fieldLabel(name string) string {
	if name == "" {
		return "an unqualified term"
	}
	return strconv.Quote(name)
}

// sdPath checks and returns the "<id>.<param>" part of sd.<id>.<param>.
func sdPath(name string) (string, error) {
	path := strings.ToLower(strings.TrimPrefix(strings.ToLower(name), "sd."))
	if i := strings.IndexByte(path, '.'); i <= 0 || i == len(path)-1 {
		return "", fmt.Errorf("structured data is searched as sd.<id>.<param>:value, not %q", name)
	}
	return path, nil
}

// term translates a match (phrase when quoted) of text on field name.
func (c *compiler) term(name, text string, phrase, neg bool) (node, error) {
	f, err := lookup(name)
	if err != nil {
		return nil, err
	}
	if f == nil {
		kids := make([]node, 0, len(defaultFields))
		for _, d := range defaultFields {
			k, err := c.fieldTerm(d, name, text, phrase, neg)
			if err != nil {
				return nil, err
			}
			kids = append(kids, k)
		}
		return &orNode{kids: kids, ipv4: countableIPv4(text)}, nil
	}
	return c.fieldTerm(f, name, text, phrase, neg)
}

func (c *compiler) fieldTerm(f *field, name, text string, phrase, neg bool) (node, error) {
	switch f.typ {
	case typeKeyword:
		return &kwTerm{f: f, term: strings.ToLower(text)}, nil
	case typeText:
		var toks []string
		Tokens(text, func(t string) { toks = append(toks, strings.Clone(t)) })
		if len(toks) == 0 {
			return noneNode{}, nil
		}
		if !neg && f.name == "message" {
			c.hl = append(c.hl, highlighter{toks: toks})
		}
		return newTextPhrase(f, toks), nil
	case typeNumber:
		low := strings.ToLower(strings.TrimSpace(text))
		if f.name == "severity" {
			if v, ok := severityNames[low]; ok {
				return &numRange{f: f, lo: v, hi: v}, nil
			}
		}
		v, err := strconv.ParseFloat(low, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is numeric: %q is not a number", f.name, text)
		}
		t := true
		return c.numRange(f, query.NewNumericRangeInclusiveQuery(&v, &v, &t, &t))
	case typeBool:
		switch strings.ToLower(text) {
		case "true":
			return &boolTerm{f: f, want: true}, nil
		case "false":
			return &boolTerm{f: f, want: false}, nil
		}
		return nil, fmt.Errorf("%s is true or false, not %q", f.name, text)
	case typeSD:
		path, err := sdPath(name)
		if err != nil {
			return nil, err
		}
		return &sdMatch{path: path, term: strings.ToLower(text)}, nil
	case typeTime:
		return nil, fmt.Errorf("%s takes a range: %s:>=\"2006-01-02T15:04:05Z\"", f.name, f.name)
	}
	return nil, fmt.Errorf("cannot search %s", f.name)
}

func (c *compiler) numRange(f *field, r *query.NumericRangeQuery) (node, error) {
	lo, hi, ok := intBounds(r.Min, r.Max, r.InclusiveMin, r.InclusiveMax)
	if !ok {
		return noneNode{}, nil
	}
	return &numRange{f: f, lo: lo, hi: hi}, nil
}

// wildcardExpr turns a wildcard (* any run, ? one character) into a regular
// expression the way bleve does.
func wildcardExpr(w string) string {
	var b strings.Builder
	for _, r := range w {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	return b.String()
}

func (c *compiler) wildcard(name, w string, neg bool) (node, error) {
	if name == "" && strings.Trim(w, "*") == "" {
		return allNode{}, nil
	}
	f, err := lookup(name)
	if err != nil {
		return nil, err
	}
	if f != nil && f.typ == typeNumber || f != nil && f.typ == typeTime || f != nil && f.typ == typeBool {
		if strings.Trim(w, "*") != "" {
			return nil, fmt.Errorf("%s: wildcards only test presence (%s:*)", f.name, f.name)
		}
		switch f.typ {
		case typeNumber:
			return &numExists{f: f}, nil
		case typeBool:
			return allNode{}, nil
		}
		return allNode{}, nil
	}
	return c.pattern(f, name, wildcardExpr(strings.ToLower(w)), true, neg)
}

func (c *compiler) regexp(name, expr string, neg bool) (node, error) {
	f, err := lookup(name)
	if err != nil {
		return nil, err
	}
	if f != nil && (f.typ == typeNumber || f.typ == typeTime || f.typ == typeBool) {
		return nil, fmt.Errorf("%s: regular expressions apply to keyword and text fields", f.name)
	}
	// bleve drops a leading ^ (terms are matched whole anyway).
	return c.pattern(f, name, strings.TrimPrefix(expr, "^"), false, neg)
}

// pattern compiles expr for both sides: Go's regexp anchored for Match and
// vellum's automaton (what bleve runs on the term dictionary), checked here
// so that an expression bleve would refuse is a 400 now, not a 500 later.
func (c *compiler) pattern(f *field, name, expr string, wildcard, neg bool) (node, error) {
	// Building vellum's automaton costs ~0.5 ms even for cam-0*, and a
	// short wildcard (literals, . and .*) is always accepted: check only
	// regexps and unusual wildcards.
	if !wildcard || len(expr) > 64 || strings.Count(expr, ".") > 8 {
		if _, err := vregexp.New(expr); err != nil {
			return nil, fmt.Errorf("regular expression %q: %v", expr, err)
		}
	}
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %v", expr, err)
	}
	p := newPattern(re, expr)
	if wildcard {
		p.fold = regexp.MustCompile(`(?i)^(?:` + expr + `)$`) // re compiled, so does this
	}
	mk := func(f *field) (node, error) {
		switch f.typ {
		case typeKeyword:
			return &kwPattern{f: f, p: p}, nil
		case typeText:
			if !neg && f.name == "message" {
				c.hl = append(c.hl, highlighter{re: re})
			}
			return &textPattern{f: f, p: p}, nil
		case typeSD:
			path, err := sdPath(name)
			if err != nil {
				return nil, err
			}
			return &sdMatch{path: path, p: p}, nil
		}
		return nil, fmt.Errorf("cannot search %s by pattern", f.name)
	}
	if f != nil {
		return mk(f)
	}
	kids := make([]node, 0, len(defaultFields))
	for _, d := range defaultFields {
		k, err := mk(d)
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
	}
	return &orNode{kids: kids}, nil
}

// requireShould turns the optional (should) clauses of a parsed query
// string into required ones, so that plain clauses AND together.
func requireShould(q query.Query) query.Query {
	bq, ok := q.(*query.BooleanQuery)
	if !ok || bq.Should == nil {
		return q
	}
	var subs []query.Query
	for _, part := range []query.Query{bq.Must, bq.Should} {
		switch p := part.(type) {
		case nil:
		case *query.ConjunctionQuery:
			subs = append(subs, p.Conjuncts...)
		case *query.DisjunctionQuery:
			subs = append(subs, p.Disjuncts...)
		default:
			subs = append(subs, p)
		}
	}
	bq.Must = query.NewConjunctionQuery(subs)
	bq.Should = nil
	return bq
}

// splitOr splits a query string at every standalone, upper-case OR outside
// double quotes and /regexps/.
func splitOr(s string) []string {
	var parts []string
	start, inQuote, inRegexp := 0, false, false
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '\\':
			i++
		case ch == '"' && !inRegexp:
			inQuote = !inQuote
		case ch == '/' && !inQuote && (inRegexp || i == 0 || s[i-1] == ' ' || s[i-1] == ':' || s[i-1] == '+' || s[i-1] == '-'):
			inRegexp = !inRegexp
		case !inQuote && !inRegexp && ch == 'O' && strings.HasPrefix(s[i:], "OR") &&
			(i == 0 || s[i-1] == ' ' || s[i-1] == '\t') && (i+2 == len(s) || s[i+2] == ' ' || s[i+2] == '\t'):
			parts = append(parts, s[start:i])
			start = i + 2
			i++
		}
	}
	return append(parts, s[start:])
}
