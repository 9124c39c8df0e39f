package index

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/segwatch/segwatch/ingest/event"
)

// Facet limits.
const (
	// MaxFacets bounds the fields of one request: each costs a counter
	// per match.
	MaxFacets = 16
	// MaxFacetValues is how many values of a field Result.Facets holds.
	MaxFacetValues = 10
)

// facetVal is one value of a facet field: text for keyword fields, a
// number for numeric ones, so counting never formats numbers.
type facetVal struct {
	s string
	n int64
}

// facetField is a field that can be faceted: get returns the event's value
// and whether the event has the field at all.
type facetField struct {
	name string
	num  bool
	get  func(ev *event.Event) (facetVal, bool)
}

func kwFacet(name string, get func(ev *event.Event) string) *facetField {
	return &facetField{name: name, get: func(ev *event.Event) (facetVal, bool) {
		s := get(ev)
		return facetVal{s: s}, s != ""
	}}
}

// numFacet is a numeric field present only on events of kind (as in
// package match: severity on logs whose severity is known, ports on flows).
func numFacet(name, kind string, get func(ev *event.Event) int) *facetField {
	return &facetField{name: name, num: true, get: func(ev *event.Event) (facetVal, bool) {
		v := get(ev)
		return facetVal{n: int64(v)}, ev.Kind == kind && v >= 0
	}}
}

// facetFields is the table of fields a facet may name: the keyword fields
// of the query language and the numeric fields with small domains (counters
// such as bytes have a value per event: a top 10 of them means nothing).
var facetFields = func() map[string]*facetField {
	fs := []*facetField{
		kwFacet("kind", func(ev *event.Event) string { return ev.Kind }),
		kwFacet("source_ip", func(ev *event.Event) string { return ev.SourceIP }),
		kwFacet("device", func(ev *event.Event) string { return ev.Device }),
		kwFacet("segment", func(ev *event.Event) string { return ev.Segment }),
		kwFacet("category", func(ev *event.Event) string { return ev.Category }),
		kwFacet("owner", func(ev *event.Event) string { return ev.Owner }),
		kwFacet("host", func(ev *event.Event) string { return ev.Host }),
		kwFacet("app", func(ev *event.Event) string { return ev.App }),
		kwFacet("procid", func(ev *event.Event) string { return ev.ProcID }),
		kwFacet("msgid", func(ev *event.Event) string { return ev.MsgID }),
		kwFacet("src_ip", func(ev *event.Event) string { return ev.SrcIP }),
		kwFacet("dst_ip", func(ev *event.Event) string { return ev.DstIP }),
		kwFacet("proto", func(ev *event.Event) string { return ev.Proto }),
		kwFacet("src_segment", func(ev *event.Event) string { return ev.SrcSegment }),
		kwFacet("dst_segment", func(ev *event.Event) string { return ev.DstSegment }),
		kwFacet("src_device", func(ev *event.Event) string { return ev.SrcDevice }),
		kwFacet("dst_device", func(ev *event.Event) string { return ev.DstDevice }),
		numFacet("severity", event.KindLog, func(ev *event.Event) int { return ev.Severity }),
		numFacet("facility", event.KindLog, func(ev *event.Event) int { return ev.Facility }),
		numFacet("src_port", event.KindFlow, func(ev *event.Event) int { return ev.SrcPort }),
		numFacet("dst_port", event.KindFlow, func(ev *event.Event) int { return ev.DstPort }),
		numFacet("flow_version", event.KindFlow, func(ev *event.Event) int { return ev.FlowVersion }),
	}
	m := make(map[string]*facetField, len(fs))
	for _, f := range fs {
		m[f.name] = f
	}
	return m
}()

// FacetFields returns the names Request.Facets accepts, sorted.
func FacetFields() []string {
	out := make([]string, 0, len(facetFields))
	for name := range facetFields {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// facetSpec resolves the requested facet names (case-insensitive,
// duplicates dropped). An unknown name is the caller's error.
func facetSpec(names []string) ([]*facetField, error) {
	if len(names) > MaxFacets {
		return nil, &QueryError{Err: fmt.Errorf("more than %d facets", MaxFacets)}
	}
	var out []*facetField
	for _, n := range names {
		f := facetFields[strings.ToLower(strings.TrimSpace(n))]
		if f == nil {
			return nil, &QueryError{Err: fmt.Errorf("cannot facet on %q (facet fields: %s)", n, strings.Join(FacetFields(), ", "))}
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// facetCounter counts the values of some facet fields over events. It is
// not safe for concurrent use: each goroutine counts into its own and the
// results are merged.
type facetCounter struct {
	fields []*facetField
	// Counters are pointers so that counting an existing value never
	// assigns to the map: an assignment stores the new key too, which may
	// be a view of a reused decode buffer.
	counts []map[facetVal]*int
}

func newFacetCounter(fields []*facetField) *facetCounter {
	fc := &facetCounter{fields: fields, counts: make([]map[facetVal]*int, len(fields))}
	for i := range fc.counts {
		fc.counts[i] = make(map[facetVal]*int)
	}
	return fc
}

func (fc *facetCounter) add(ev *event.Event) {
	for i, f := range fc.fields {
		if v, ok := f.get(ev); ok {
			fc.addN(i, v, 1)
		}
	}
}

// addN counts value v of field i n times.
func (fc *facetCounter) addN(i int, v facetVal, n int) {
	if p := fc.counts[i][v]; p != nil {
		*p += n
		return
	}
	// Decoded events may be views of a reused buffer.
	v.s = strings.Clone(v.s)
	fc.counts[i][v] = &n
}

func (fc *facetCounter) merge(o *facetCounter) {
	for i := range fc.counts {
		for v, p := range o.counts[i] {
			if q := fc.counts[i][v]; q != nil {
				*q += *p
			} else {
				fc.counts[i][v] = p
			}
		}
	}
}

// result returns the top MaxFacetValues of each field.
func (fc *facetCounter) result() map[string][]FacetCount {
	out := make(map[string][]FacetCount, len(fc.fields))
	type vc struct {
		v facetVal
		n int
	}
	for i, f := range fc.fields {
		all := make([]vc, 0, len(fc.counts[i]))
		for v, n := range fc.counts[i] {
			if *n > 0 {
				all = append(all, vc{v, *n})
			}
		}
		slices.SortFunc(all, func(a, b vc) int {
			if c := cmp.Compare(b.n, a.n); c != 0 {
				return c
			}
			if f.num {
				return cmp.Compare(a.v.n, b.v.n)
			}
			return strings.Compare(a.v.s, b.v.s)
		})
		top := make([]FacetCount, 0, min(len(all), MaxFacetValues))
		for _, x := range all[:min(len(all), MaxFacetValues)] {
			val := x.v.s
			if f.num {
				val = strconv.FormatInt(x.v.n, 10)
			}
			top = append(top, FacetCount{Value: val, Count: x.n})
		}
		out[f.name] = top
	}
	return out
}
