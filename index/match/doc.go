// Package match owns what a segwatch search query means: the searchable
// fields, the message analyzer, the Bleve mapping and contents of block
// documents, the compilation of a query string into a block query (a
// superset) and an exact per-event matcher, and message highlighting. It
// does no I/O; the store (package index) calls it.
//
// # Query syntax
//
// Queries use Bleve's query-string syntax (SPEC §5), parsed by Bleve's own
// parser, so whatever that parser rejects is a user error (*Error, an HTTP
// 400) carrying its message:
//
//	segment:cameras severity:<=3 "login failed" -host:cam-lobby-01
//
// Clauses combine as an analyst reads them, which differs from Bleve on one
// point (a deliberate change of the contract, see the README):
//
//   - Plain clauses are all required (AND): the query above finds events in
//     segment cameras with severity at most 3 whose text holds the phrase.
//     (In Bleve a plain clause is optional.) + is accepted and changes
//     nothing; a clause prefixed with - must not match.
//   - OR, standalone and upper-case, between groups of clauses gives
//     alternatives: app:sshd OR app:httpd severity:<=3 is "app sshd, or app
//     httpd with severity at most 3" (AND binds tighter than OR; there are no
//     parentheses). A quoted "OR" is an ordinary term.
//   - An empty query or * matches every event.
//
// # Fields
//
// Field names are the event JSON names of SPEC §4 (case-insensitive); an
// unknown field is an error.
//
//   - Keyword fields — id kind source_ip device segment category owner host
//     app procid msgid src_ip dst_ip proto src_segment dst_segment
//     src_device dst_device — match the whole value, ignoring case:
//     host:CAM-01 finds cam-01. A quoted value may contain spaces.
//   - Text fields — message and parse_error — are split into tokens:
//     lower-cased maximal runs of letters, digits, '.', '_' and '-', with
//     leading and trailing '.' and '-' removed; everything else separates.
//     "src=10.20.0.11:443 failed." gives src, 10.20.0.11, 443, failed. A
//     term that gives several tokens (message:"10.20.0.11:443" or
//     message:10.20.0.11\:443: a bare colon is Bleve syntax) and a quoted
//     phrase both match those tokens adjacent and in order. A term without
//     any token (message:"!!") matches nothing.
//   - Numeric fields — severity facility src_port dst_port bytes packets
//     flow_version flows — take field:N, field:>N, field:>=N, field:<N,
//     field:<=N. severity also takes the syslog names (severity:err,
//     severity:warning). A number exists only where it means something:
//     severity and facility on log events whose header was parsed, the flow
//     fields on flow events; so severity:<=3 never matches a flow and
//     bytes:<100 never matches a log.
//   - time and received take date ranges: time:>="2026-12-01T00:00:00Z",
//     time:<"2026-12-02" (the request's from/to is the usual way).
//   - truncated:true, truncated:false.
//   - sd.<id>.<param>:value matches RFC 5424 structured data (id and param
//     ignoring case, the value as a keyword): sd.origin.ip:10.20.0.1.
//   - An unqualified term or phrase matches any of message (as text), host,
//     app, device, source_ip, src_ip and dst_ip (as keywords): 10.20.0.11
//     finds the address in a message or in any address field.
//
// Wildcards (* any run, ? one character) and /regular expressions/ (Go
// syntax, without anchors: they always match a whole value or token) apply
// to keyword values, to each token of text fields and to sd values; they
// see lower-cased text, so write them in lower case (wildcards are
// lower-cased for you). field:* tests that a field is present. Fuzzy terms
// (term~1) and boosts are not supported / ignored.
//
// # Block documents
//
// The store indexes blocks of events (one stream, up to a few hundred
// events) as single Bleve documents. BlockDoc gives, for every indexed field,
// the block's distinct terms, already normalized so that Bleve's keyword
// analyzer indexes them as given: keywords lower-cased; text fields as their
// distinct Tokens; severity, facility, flow_version (zero-padded to 1, 2, 2
// digits) and ports (5 digits) as fixed-width decimals, so that a numeric
// range is a term range; bytes, packets and flows only as their power-of-two
// bucket (two digits, bits.Len64), because exact large counters would add a
// unique term per event; sd as "<id>.<param>=<value>"; truncated as "true";
// min_time and max_time as TimeKey. id and received are not indexed: a query
// on them selects every block and Match decides.
//
// Block never drops a true match: must-not clauses are ignored, phrases are
// the conjunction of their terms, numeric ranges select whole buckets. Match
// is then exact, and does not allocate for term, phrase, keyword and numeric
// clauses.
package match
