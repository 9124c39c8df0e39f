package match

import (
	"net/netip"

	"github.com/segwatch/segwatch/ingest/event"
)

// FieldIPCount is the block-document field that lets the store count the
// events of a block holding an IPv4 address without decoding the block.
//
// A block document holds the union of its events' terms, which tells that
// a term is in a block, not in how many of its events: an exact total
// means decoding every candidate block, and an address searched over 30
// days sits in thousands of them. So each block also gets one ip_count
// value: for every event, the distinct IPv4 addresses that an unqualified
// term would match in it (tokens of message; whole values of host, app,
// device, source_ip, src_ip, dst_ip), joined by spaces and split again by
// a whitespace analyzer. Bleve keeps a term's frequency per document, so the
// frequency of an address in ip_count is the number of the block's events
// that the unqualified query for that address matches — exactly, because
// both sides apply isIPv4 to the same lower-cased tokens and values.
const FieldIPCount = "ip_count"

// IPCountAnalyzer splits ip_count values at spaces (registered in Mapping).
const IPCountAnalyzer = "segwatch_ip_count"

// isIPv4 is the one test of "an IPv4 address" for ip_count, on the index
// side (BlockBuilder) and the query side (CountTerm) alike.
func isIPv4(s string) bool {
	if len(s) < 7 || len(s) > 15 || s[0] < '0' || s[0] > '9' {
		return false
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

// ipCount builds the ip_count value of evs into buf: per event, its
// distinct IPv4 addresses in the default fields, space-separated.
func ipCount(buf []byte, evs []event.Event) []byte {
	var arr [8]string // an event's addresses so far; rarely more than 8
	for i := range evs {
		ev := &evs[i]
		seen := arr[:0]
		for _, f := range defaultFields {
			s := f.str(ev)
			if s == "" {
				continue
			}
			if f.typ != typeText {
				buf, seen = addIPv4(buf, seen, lower(s))
				continue
			}
			for j := 0; ; {
				st, e := nextToken(s, j)
				if st < 0 {
					break
				}
				j = e
				// Cheap pre-test before lower-casing: an address starts
				// with a digit.
				if c := s[st]; c >= '0' && c <= '9' {
					buf, seen = addIPv4(buf, seen, lower(s[st:e]))
				}
			}
		}
	}
	return buf
}

// addIPv4 appends t to buf (and seen) if it is an IPv4 address not seen yet
// in this event.
func addIPv4(buf []byte, seen []string, t string) ([]byte, []string) {
	if !isIPv4(t) {
		return buf, seen
	}
	for _, s := range seen {
		if s == t {
			return buf, seen
		}
	}
	if len(buf) > 0 {
		buf = append(buf, ' ')
	}
	return append(buf, t...), append(seen, t)
}

// CountTerm returns the field and term whose per-block frequency in the
// block documents is the number of events q matches in the block, when q
// is a single unqualified IPv4 address (quoted or not) and nothing else.
// Otherwise ok is false and matches must be counted by decoding.
func (q *Query) CountTerm() (field, term string, ok bool) {
	or, isOr := q.root.(*orNode)
	if !isOr || or.ipv4 == "" {
		return "", "", false
	}
	return FieldIPCount, or.ipv4, true
}

// countableIPv4 returns text when an unqualified term of that text is
// countable through ip_count, that is when it is an IPv4 address: only
// digits and dots, starting and ending with a digit, so it is one token of
// the text analysis and its own lower case, as ipCount's entries are.
func countableIPv4(text string) string {
	if !isIPv4(text) {
		return ""
	}
	return text
}
