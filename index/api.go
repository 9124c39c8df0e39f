package index

import (
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

// Orders of search results.
const (
	OrderNewest = "desc" // newest first (default)
	OrderOldest = "asc"  // oldest first
)

// Request is one search (SPEC §5 GET /api/v1/search).
type Request struct {
	// Query is Bleve query-string syntax over the event fields; empty matches all.
	Query string
	// From and To bound the event time (From inclusive, To exclusive).
	From, To time.Time
	Limit    int    // 1..10000
	Offset   int    // for paging
	Order    string // OrderNewest or OrderOldest
	// Facets names fields whose value counts the result should carry (see
	// FacetFields): keyword fields such as host, app, device, segment,
	// src_ip, and the small numeric fields severity, facility, src_port,
	// dst_port, flow_version. At most MaxFacets.
	Facets []string
}

// Result is the answer to a Request.
type Result struct {
	Total int // every match in the range, not just this page
	Took  time.Duration
	Hits  []Hit
	// Facets holds, for each field of Request.Facets, the MaxFacetValues
	// most frequent values over every match in the range (not just this
	// page), most frequent first, ties by value. Events without the field
	// (a log has no dst_port, an unknown device no device) are not counted.
	// Nil when no facet was asked for.
	//
	// The HTTP API returns it as
	//
	//	"facets": {"host": [{"value": "cam-lobby-01", "count": 812}, …], "severity": [{"value": "6", "count": 90211}, …]}
	//
	// numeric values as decimal text, so every facet has one shape.
	Facets map[string][]FacetCount
}

// FacetCount is one value of a facet field and how many matches have it.
type FacetCount struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// Hit is one matching event with highlighted message fragments (the matched
// terms wrapped in <mark>…</mark>, the rest HTML-escaped).
type Hit struct {
	Event     event.Event
	Fragments []string
}
