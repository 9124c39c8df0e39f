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
}

// Result is the answer to a Request.
type Result struct {
	Total int // every match in the range, not just this page
	Took  time.Duration
	Hits  []Hit
}

// Hit is one matching event with highlighted message fragments (the matched
// terms wrapped in <mark>…</mark>, the rest HTML-escaped).
type Hit struct {
	Event     event.Event
	Fragments []string
}
