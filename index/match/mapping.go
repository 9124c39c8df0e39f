package match

import (
	"math/bits"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/regexp"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/whitespace"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/segwatch/segwatch/ingest/event"
)

// TextAnalyzer is the name of the message analyzer registered in Mapping. It
// is Tokens expressed with bleve's own parts (a regexp tokenizer and a
// lower-case filter). Block documents do not need it, because BlockDoc hands
// bleve tokens already produced by Tokens (one keyword per distinct token,
// which saves bleve the analysis); it is there for callers that analyse text
// through bleve, and a test keeps it equal to Tokens.
const TextAnalyzer = "segwatch_text"

// tokenPattern matches exactly the tokens of Tokens: a run of letters,
// digits, '.', '_', '-' that starts and ends with a letter, digit or '_'.
const tokenPattern = `[\p{L}\p{Nd}_](?:[\p{L}\p{Nd}._-]*[\p{L}\p{Nd}_])?`

// Mapping returns the one Bleve index mapping for block documents. Every
// field is a keyword (bleve's "keyword" analyzer: the term is the value
// exactly as BlockDoc wrote it, already lower-cased, tokenized or encoded),
// not stored, without term vectors, doc values or _all: nothing is read back
// from bleve except document IDs, which the store makes carry everything it
// needs (frame location, count, min and max time).
func Mapping() mapping.IndexMapping {
	im := mapping.NewIndexMapping()
	im.DefaultAnalyzer = keyword.Name
	im.StoreDynamic = false
	im.IndexDynamic = false
	im.DocValuesDynamic = false
	if err := im.AddCustomTokenizer(TextAnalyzer, map[string]any{
		"type":   regexp.Name,
		"regexp": tokenPattern,
	}); err != nil {
		panic("match: text tokenizer: " + err.Error()) // a constant: fails in every test if wrong
	}
	if err := im.AddCustomAnalyzer(TextAnalyzer, map[string]any{
		"type":          custom.Name,
		"tokenizer":     TextAnalyzer,
		"token_filters": []string{lowercase.Name},
	}); err != nil {
		panic("match: text analyzer: " + err.Error())
	}

	dm := mapping.NewDocumentStaticMapping()
	add := func(name string) {
		fm := mapping.NewKeywordFieldMapping()
		fm.Analyzer = keyword.Name
		fm.Store = false
		fm.Index = true
		fm.IncludeTermVectors = false
		fm.IncludeInAll = false
		fm.DocValues = false
		dm.AddFieldMappingsAt(name, fm)
	}
	for _, f := range fields {
		if f.indexed && f.typ != typeTime {
			add(f.name)
		}
	}
	add(fieldMinTime)
	add(fieldMaxTime)
	// ip_count: a term's frequency per block is the number of its events
	// holding that address (see FieldIPCount), so it is analysed, and
	// Bleve's per-document frequencies are kept as usual.
	if err := im.AddCustomAnalyzer(IPCountAnalyzer, map[string]any{
		"type":      custom.Name,
		"tokenizer": whitespace.Name,
	}); err != nil {
		panic("match: ip_count analyzer: " + err.Error())
	}
	ipc := mapping.NewTextFieldMapping()
	ipc.Analyzer = IPCountAnalyzer
	ipc.Store = false
	ipc.Index = true
	ipc.IncludeTermVectors = false
	ipc.IncludeInAll = false
	ipc.DocValues = false
	dm.AddFieldMappingsAt(FieldIPCount, ipc)
	im.DefaultMapping = dm
	return im
}

// timeKeyWidth digits of milliseconds cover 1970 to 2286.
const timeKeyWidth = 13

// TimeKey renders t as the fixed-width millisecond keyword used for the
// min_time and max_time fields of block documents: decimal milliseconds
// since the Unix epoch, zero-padded to 13 digits, so that string order is
// time order. Times before 1970 are clamped to 0, after 2286 to all nines.
func TimeKey(t time.Time) string {
	ms := t.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	if ms > 9999999999999 {
		ms = 9999999999999
	}
	return padded(uint64(ms), timeKeyWidth)
}

// TimeRange returns a Bleve query selecting the blocks that may hold an
// event in [from, to): min_time <= to and max_time >= from, compared at
// millisecond resolution and inclusive at both ends so that it stays a
// superset (Match or the store check the exact bounds). A zero from or to is
// unbounded; both zero select every block.
func TimeRange(from, to time.Time) query.Query {
	var qs []query.Query
	if !to.IsZero() {
		qs = append(qs, termRange(fieldMinTime, "", TimeKey(to)))
	}
	if !from.IsZero() {
		qs = append(qs, termRange(fieldMaxTime, TimeKey(from), ""))
	}
	switch len(qs) {
	case 0:
		return query.NewMatchAllQuery()
	case 1:
		return qs[0]
	}
	return query.NewConjunctionQuery(qs)
}

// termRange is an inclusive term range; an empty bound is open.
func termRange(field, lo, hi string) query.Query {
	t := true
	q := query.NewTermRangeInclusiveQuery(lo, hi, &t, &t)
	q.SetField(field)
	return q
}

// BlockDoc builds the Bleve document for a block of events: for every
// indexed field the distinct terms of the block's events (keywords
// lower-cased, message and parse_error tokenized by Tokens, numbers encoded
// as described in the package doc, sd as "<id>.<param>=<value>", truncated as
// "true"), plus min_time and max_time (TimeKey). The value is a
// map[string]any for bleve's Batch.Index; BlockBuilder builds the same with
// less garbage.
func BlockDoc(evs []event.Event) any {
	var b BlockBuilder
	return b.Doc(evs)
}

// BlockBuilder builds block documents reusing its memory between calls. The
// map returned by Doc is valid until the next call to Doc: bleve's
// Batch.Index copies what it needs before returning, so the pattern is
// doc := b.Doc(evs); batch.Index(id, doc). The zero value is ready to use;
// a BlockBuilder is not safe for concurrent use.
type BlockBuilder struct {
	doc   map[string]any
	seen  map[string]struct{}
	terms map[string][]string
	nums  map[uint64]struct{}
	raws  []string
	buf   []byte
}

// Doc returns the block document of evs (see BlockDoc).
func (b *BlockBuilder) Doc(evs []event.Event) map[string]any {
	if b.doc == nil {
		b.doc = make(map[string]any, len(fields)+2)
		b.seen = make(map[string]struct{}, 256)
		b.terms = make(map[string][]string, len(fields))
	}
	clear(b.doc)
	for k, v := range b.terms {
		b.terms[k] = v[:0]
	}
	if len(evs) == 0 {
		return b.doc
	}
	minT, maxT := evs[0].Time, evs[0].Time
	for i := range evs {
		t := evs[i].Time
		if t.Before(minT) {
			minT = t
		}
		if t.After(maxT) {
			maxT = t
		}
	}
	b.doc[fieldMinTime] = TimeKey(minT)
	b.doc[fieldMaxTime] = TimeKey(maxT)
	if b.buf = ipCount(b.buf[:0], evs); len(b.buf) > 0 {
		b.doc[FieldIPCount] = string(b.buf)
	}

	for _, f := range fields {
		if !f.indexed || f.typ == typeTime {
			continue
		}
		var terms []string
		switch f.typ {
		case typeKeyword:
			terms = b.keywords(f, evs)
		case typeText:
			terms = b.tokens(f, evs)
		case typeNumber:
			terms = b.numbers(f, evs)
		case typeBool:
			terms = b.terms[f.name]
			for i := range evs {
				if f.boolean(&evs[i]) {
					terms = append(terms, "true")
					break
				}
			}
		case typeSD:
			terms = b.sd(evs)
		}
		b.terms[f.name] = terms
		if len(terms) > 0 {
			b.doc[f.name] = terms
		}
	}
	return b.doc
}

// keywords collects the distinct lower-cased values of a keyword field.
// Events of one stream mostly repeat a value or two, so a short list
// scanned linearly beats a map; the raw values are compared before
// lower-casing so each distinct value is lowered once.
func (b *BlockBuilder) keywords(f *field, evs []event.Event) []string {
	terms := b.terms[f.name]
	raws := b.raws[:0]
	useMap := false
	prev := ""
next:
	for i := range evs {
		v := f.str(&evs[i])
		if v == "" || v == prev {
			continue
		}
		prev = v
		if !useMap {
			for _, r := range raws {
				if r == v {
					continue next
				}
			}
			raws = append(raws, v)
			if len(raws) > 16 {
				// Many distinct values (e.g. src_ip of a flow exporter):
				// switch to the map.
				useMap = true
				clear(b.seen)
				for _, r := range raws {
					b.seen[r] = struct{}{}
				}
			}
		} else {
			if _, ok := b.seen[v]; ok {
				continue
			}
			b.seen[v] = struct{}{}
		}
		terms = appendUnique(terms, lower(v))
	}
	b.raws = raws[:0]
	return terms
}

// appendUnique appends t unless the last few terms already hold it: two
// raw values that differ only in case lower to one term. Terms are checked
// exhaustively only while the list is short; a rare duplicate in a long
// list costs bleve a little work, never a wrong answer.
func appendUnique(terms []string, t string) []string {
	for i := len(terms) - 1; i >= 0 && i >= len(terms)-16; i-- {
		if terms[i] == t {
			return terms
		}
	}
	return append(terms, t)
}

// tokens collects the distinct tokens of a text field, with the same
// raw-before-lower lookup as keywords.
func (b *BlockBuilder) tokens(f *field, evs []event.Event) []string {
	terms := b.terms[f.name]
	clear(b.seen)
	for i := range evs {
		s := f.str(&evs[i])
		for j := 0; ; {
			st, e := nextToken(s, j)
			if st < 0 {
				break
			}
			j = e
			raw := s[st:e]
			if _, ok := b.seen[raw]; ok {
				continue
			}
			b.seen[raw] = struct{}{}
			l := lower(raw)
			if l != raw {
				if _, ok := b.seen[l]; ok {
					continue
				}
				b.seen[l] = struct{}{}
			}
			terms = append(terms, l)
		}
	}
	return terms
}

// numbers collects the distinct terms of a numeric field. Small domains
// (buckets, values up to 99) use a bit set and precomputed terms; ports a
// map of values.
func (b *BlockBuilder) numbers(f *field, evs []event.Event) []string {
	terms := b.terms[f.name]
	if f.enc == numBucket || f.max < 128 {
		var set [2]uint64
		for i := range evs {
			v, ok := f.num(&evs[i])
			if !ok {
				continue
			}
			k := uint64(bits.Len64(v))
			if f.enc == numPadded {
				k = min(v, f.max)
			}
			set[k/64] |= 1 << (k % 64)
		}
		for k := range uint64(128) {
			if set[k/64]&(1<<(k%64)) != 0 {
				terms = append(terms, smallTerm(f, k))
			}
		}
		return terms
	}
	if b.nums == nil {
		b.nums = make(map[uint64]struct{}, 64)
	}
	clear(b.nums)
	prev, havePrev := uint64(0), false
	for i := range evs {
		v, ok := f.num(&evs[i])
		if !ok || havePrev && v == prev {
			continue
		}
		prev, havePrev = v, true
		v = min(v, f.max)
		if _, ok := b.nums[v]; ok {
			continue
		}
		b.nums[v] = struct{}{}
		terms = append(terms, f.numTerm(v))
	}
	return terms
}

// smallTerms[w][k] is k zero-padded to w digits, for the bit-set path.
var smallTerms = func() (t [3][128]string) {
	for w := 1; w <= 2; w++ {
		for k := range 128 {
			t[w][k] = padded(uint64(k), w)
		}
	}
	return t
}()

// smallTerm is the term of bit-set key k (a bucket or a small value).
func smallTerm(f *field, k uint64) string {
	if f.enc == numBucket {
		return smallTerms[2][k]
	}
	return smallTerms[f.width][k]
}

// sd collects the distinct "<id>.<param>=<value>" terms, lower-cased.
func (b *BlockBuilder) sd(evs []event.Event) []string {
	terms := b.terms["sd"]
	clear(b.seen)
	for i := range evs {
		for id, params := range evs[i].SD {
			for p, v := range params {
				buf := append(b.buf[:0], id...)
				buf = append(buf, '.')
				buf = append(buf, p...)
				buf = append(buf, '=')
				buf = append(buf, v...)
				b.buf = buf
				if _, ok := b.seen[string(buf)]; ok { // no allocation for the lookup
					continue
				}
				t := strings.ToLower(string(buf))
				b.seen[t] = struct{}{}
				b.seen[string(buf)] = struct{}{}
				terms = append(terms, t)
			}
		}
	}
	return terms
}
