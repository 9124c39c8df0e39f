package index

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	bindex "github.com/blevesearch/bleve_index_api"
	"github.com/segwatch/segwatch/index/match"
	"github.com/segwatch/segwatch/ingest/event"
)

// Search limits.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
	// MaxWindow bounds Offset+Limit: the hits before Offset are kept in
	// memory while searching, so deep paging must be refused, not tried.
	MaxWindow = 100000
	// DefaultRange is the time range searched when From is not given.
	DefaultRange = 24 * time.Hour
)

// QueryError is a query the parser rejects: the caller's fault (HTTP 400).
type QueryError struct{ Err error }

// Error implements error.
func (e *QueryError) Error() string { return "bad query: " + e.Err.Error() }

// Unwrap returns the parser's error (often a *match.Error).
func (e *QueryError) Unwrap() error { return e.Err }

// candidate is a block that may hold matches: a frame of a shard, or an
// in-memory block (evs set).
type candidate struct {
	sh           *shard
	ref          blockRef
	evs          []event.Event
	minNs, maxNs int64
	// matches is the number of the block's events that match, when Bleve
	// told it (countTerm's frequency, see termFreqs) and hasMatches is set.
	matches    int
	hasMatches bool
}

// hitKey orders events: time, then day, block and index as tie-breaks so
// paging is stable.
type hitKey struct {
	ns    int64
	day   dayKey
	block uint32
	idx   int
}

func (a hitKey) less(b hitKey) bool {
	if a.ns != b.ns {
		return a.ns < b.ns
	}
	if a.day != b.day {
		return a.day < b.day
	}
	if a.block != b.block {
		return a.block < b.block
	}
	return a.idx < b.idx
}

type kept struct {
	key hitKey
	ev  event.Event
}

// hitHeap keeps the best k hits with the worst at the root. better(a, b)
// tells whether a comes before b in the requested order.
type hitHeap struct {
	h    []kept
	desc bool
}

func (h *hitHeap) better(a, b hitKey) bool {
	if h.desc {
		return b.less(a)
	}
	return a.less(b)
}
func (h *hitHeap) Len() int           { return len(h.h) }
func (h *hitHeap) Less(i, j int) bool { return h.better(h.h[j].key, h.h[i].key) }
func (h *hitHeap) Swap(i, j int)      { h.h[i], h.h[j] = h.h[j], h.h[i] }
func (h *hitHeap) Push(x any)         { h.h = append(h.h, x.(kept)) }
func (h *hitHeap) Pop() any {
	x := h.h[len(h.h)-1]
	h.h = h.h[:len(h.h)-1]
	return x
}

// searcher is the state of one Search.
type searcher struct {
	s      *Store
	q      *match.Query
	fromNs int64
	toNs   int64
	k      int
	hits   hitHeap
	total  int
	st     decodeState
	// Count workers (started on demand) for blocks that cannot place a hit.
	work    chan *candidate
	wg      sync.WaitGroup
	counted atomic.Int64
	// needID tells that the query may test the id field, so decoded events
	// need their ID before Match; otherwise only kept hits get one.
	needID bool
	// Facets of a filtered query are counted over the verified matches:
	// fc by the main walk, each count worker into its own, merged into fc
	// under fcMu when it ends.
	fc   *facetCounter
	fcMu sync.Mutex
	// countField/countTerm: q is one IPv4 address, whose frequency in
	// countField is the number of a block's events it matches
	// (match.Query.CountTerm); empty when matches must be decoded.
	countField, countTerm string
}

// Search runs req: defaults are To=now, From=To-24h, Limit 100 (at most
// 10000), newest first. Total counts every match in [From, To).
func (s *Store) Search(ctx context.Context, req Request) (Result, error) {
	start := time.Now()
	if req.To.IsZero() {
		req.To = s.now()
	}
	if req.From.IsZero() {
		req.From = req.To.Add(-DefaultRange)
	}
	if req.Limit <= 0 {
		req.Limit = DefaultLimit
	}
	if req.Limit > MaxLimit {
		req.Limit = MaxLimit
	}
	if req.Offset < 0 {
		req.Offset = 0
	}
	if req.Offset+req.Limit > MaxWindow {
		return Result{}, &QueryError{Err: fmt.Errorf("offset+limit above %d: narrow the time range instead", MaxWindow)}
	}
	var desc bool
	switch req.Order {
	case "", OrderNewest:
		desc = true
	case OrderOldest:
	default:
		return Result{}, &QueryError{Err: fmt.Errorf("order %q is neither %q nor %q", req.Order, OrderNewest, OrderOldest)}
	}
	q, err := match.Compile(req.Query)
	if err != nil {
		return Result{}, &QueryError{Err: err}
	}
	facets, err := facetSpec(req.Facets)
	if err != nil {
		return Result{}, err
	}
	res := Result{Hits: []Hit{}}
	if !req.From.Before(req.To) {
		if len(facets) > 0 {
			res.Facets = newFacetCounter(facets).result()
		}
		res.Took = time.Since(start)
		return res, nil
	}
	shs, err := s.acquireRange(req.From, req.To, desc)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		for _, sh := range shs {
			sh.release()
		}
	}()
	sr := &searcher{
		s: s, q: q,
		fromNs: req.From.UnixNano(), toNs: req.To.UnixNano(),
		k:      req.Offset + req.Limit,
		hits:   hitHeap{desc: desc},
		needID: strings.Contains(strings.ToLower(req.Query), "id"),
	}
	if len(facets) > 0 && !q.MatchAll() {
		sr.fc = newFacetCounter(facets)
		sr.st.fc = sr.fc
	} else if f, t, ok := q.CountTerm(); ok {
		sr.countField, sr.countTerm = f, t
	}
	// No match.TimeRange: its min/max time keys are unique per block, so a
	// term range over them expands to one term searcher per block in the
	// shard (measured: most of the search time). A shard is one day anyway,
	// and the candidates' times are in their document IDs: filter there.
	bq := q.Block()
	defer sr.stopCounters() // on early returns
	for _, sh := range shs {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		if q.MatchAll() && sr.visitAll(sh) {
			continue
		}
		if sr.countTerm != "" {
			ok, err := sr.countByTerm(ctx, sh)
			if err != nil {
				return Result{}, err
			}
			if ok {
				continue
			}
		}
		cands, err := sr.candidates(ctx, sh, bq)
		if err != nil {
			return Result{}, err
		}
		for i := range cands {
			sr.visit(&cands[i])
		}
	}
	sr.stopCounters()
	if len(facets) > 0 {
		if sr.fc == nil {
			// Match-all: from the rollups, without decoding the range.
			if sr.fc, err = sr.allFacets(ctx, shs, facets); err != nil {
				return Result{}, err
			}
		}
		res.Facets = sr.fc.result()
	}
	// Pop worst first into the tail of the slice.
	out := make([]kept, len(sr.hits.h))
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(&sr.hits).(kept)
	}
	res.Total = sr.total
	if req.Offset < len(out) {
		for _, kh := range out[req.Offset:] {
			res.Hits = append(res.Hits, Hit{Event: kh.ev, Fragments: q.Highlight(kh.ev.Message)})
		}
	}
	res.Took = time.Since(start)
	return res, nil
}

// acquireRange returns the shards whose day intersects [from, to), in
// search order, each with a reader reference.
func (s *Store) acquireRange(from, to time.Time, desc bool) ([]*shard, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	lo, hi := dayOf(from), dayOf(to.Add(-1))
	var out []*shard
	for d, sh := range s.shards {
		if d >= lo && d <= hi && sh.acquire() {
			out = append(out, sh)
		}
	}
	slices.SortFunc(out, func(a, b *shard) int {
		if desc {
			return int(b.day - a.day)
		}
		return int(a.day - b.day)
	})
	return out, nil
}

// candidates lists the blocks of sh that may match, sorted so the blocks
// most likely to hold the best hits come first.
func (sr *searcher) candidates(ctx context.Context, sh *shard, bq query.Query) ([]candidate, error) {
	// The memory snapshot is taken before the Bleve reader: a block
	// committed in between is then in both and deduplicated by number, and
	// none can be in neither.
	mem := sh.memSnapshot()
	inMem := make(map[uint32]bool, len(mem))
	var out []candidate
	for i := range mem {
		b := &mem[i]
		inMem[b.block] = true
		if b.maxNs >= sr.fromNs && b.minNs < sr.toNs {
			out = append(out, candidate{sh: sh, ref: blockRef{block: b.block, count: len(b.evs)}, evs: b.evs, minNs: b.minNs, maxNs: b.maxNs})
		}
	}
	r, err := sh.reader()
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", sh.day.dirName(), err)
	}
	defer r.Close()
	srch, err := bq.Searcher(ctx, r, sh.idx.Mapping(), search.SearcherOptions{Score: "none"})
	if err != nil {
		return nil, &QueryError{Err: err}
	}
	defer srch.Close()
	freqs, err := sr.termFreqs(ctx, sh, r)
	if err != nil {
		return nil, err
	}
	sctx := &search.SearchContext{
		DocumentMatchPool: search.NewDocumentMatchPool(srch.DocumentMatchPoolSize(), 0),
		IndexReader:       r,
	}
	for {
		dm, err := srch.Next(sctx)
		if err != nil {
			return nil, fmt.Errorf("search %s: %w", sh.day.dirName(), err)
		}
		if dm == nil {
			break
		}
		matches, hasMatches := freqs[string(dm.IndexInternalID)]
		id, err := r.ExternalID(dm.IndexInternalID)
		sctx.DocumentMatchPool.Put(dm)
		if err != nil {
			return nil, fmt.Errorf("search %s: %w", sh.day.dirName(), err)
		}
		ref, ok := parseDocID(id)
		if !ok || inMem[ref.block] || ref.off >= sh.raw.size.Load() {
			// Not ours, already read from memory, or past a raw tail cut
			// after a crash (the frame is gone).
			continue
		}
		minNs, maxNs := ref.minMs*1e6, ref.maxMs*1e6
		if maxNs >= sr.fromNs && minNs < sr.toNs {
			out = append(out, candidate{sh: sh, ref: ref, minNs: minNs, maxNs: maxNs, matches: matches, hasMatches: hasMatches})
		}
	}
	sr.sortCandidates(out)
	return out, nil
}

// termFreqs returns, by internal document ID, how many events of each
// block of r match the query, when the query is countable (countTerm) and
// the shard's blocks carry its field; nil otherwise. Blocks also read from
// memory are skipped by the caller by block number, as for every query.
func (sr *searcher) termFreqs(ctx context.Context, sh *shard, r bindex.IndexReader) (map[string]int, error) {
	if sr.countTerm == "" || !sh.ipCount {
		return nil, nil
	}
	out := map[string]int{}
	err := sr.eachPosting(ctx, sh, r, func(id bindex.IndexInternalID, freq int) { out[string(id)] = freq })
	return out, err
}

// eachPosting calls fn with the internal ID and term frequency of every
// document of r holding countTerm in countField.
func (sr *searcher) eachPosting(ctx context.Context, sh *shard, r bindex.IndexReader, fn func(id bindex.IndexInternalID, freq int)) error {
	tfr, err := r.TermFieldReader(ctx, []byte(sr.countTerm), sr.countField, true, false, false)
	if err != nil {
		return fmt.Errorf("search %s: %w", sh.day.dirName(), err)
	}
	defer tfr.Close()
	var tfd bindex.TermFieldDoc
	for {
		d, err := tfr.Next(&tfd)
		if err != nil {
			return fmt.Errorf("search %s: %w", sh.day.dirName(), err)
		}
		if d == nil {
			return nil
		}
		fn(d.ID, int(d.Freq))
	}
}

// sortCandidates puts the blocks most likely to hold the best hits first.
func (sr *searcher) sortCandidates(out []candidate) {
	if sr.hits.desc {
		slices.SortFunc(out, func(a, b candidate) int { return cmpInt64(b.maxNs, a.maxNs) })
	} else {
		slices.SortFunc(out, func(a, b candidate) int { return cmpInt64(a.minNs, b.minNs) })
	}
}

// visitAll visits sh for a match-all query from its frame directory
// instead of Bleve (listing every block document of a day through Bleve
// costs ~1 µs a block: most of "everything, newest 100" over 30 days). A
// shard wholly inside the range that cannot place a hit is counted without
// listing its blocks. False if the directory is unavailable.
func (sr *searcher) visitAll(sh *shard) bool {
	v, ok := rollupOf(sh).view(sh)
	if !ok {
		return false
	}
	dayLo := sh.day.time().UnixNano()
	dayHi := dayLo + int64(24*time.Hour)
	if sr.fromNs <= dayLo && dayHi <= sr.toNs && !sr.canPlace(dayLo, dayHi-1) {
		sr.total += v.events
		return true
	}
	cands := make([]candidate, 0, len(v.frames)+len(v.mem))
	for i := range v.mem {
		b := &v.mem[i]
		if b.maxNs >= sr.fromNs && b.minNs < sr.toNs {
			cands = append(cands, candidate{sh: sh, ref: blockRef{block: b.block, count: len(b.evs)}, evs: b.evs, minNs: b.minNs, maxNs: b.maxNs})
		}
	}
	for _, f := range v.frames {
		if f.maxNs >= sr.fromNs && f.minNs < sr.toNs {
			cands = append(cands, candidate{sh: sh, ref: blockRef{off: f.off, count: int(f.count), block: f.block}, minNs: f.minNs, maxNs: f.maxNs})
		}
	}
	sr.sortCandidates(cands)
	for i := range cands {
		sr.visit(&cands[i])
	}
	return true
}

// countByTerm counts the matches of sh without decoding a frame when it
// can: the shard lies wholly inside the range, cannot place a hit, and its
// blocks carry countField. Committed blocks then add up the term's
// frequency over its postings (one pass, no document IDs); blocks still in
// memory are matched event by event. If a commit overlapped the snapshot
// and the reader, a block might be in both: it reports false and the
// caller counts the usual way.
func (sr *searcher) countByTerm(ctx context.Context, sh *shard) (bool, error) {
	dayLo := sh.day.time().UnixNano()
	dayHi := dayLo + int64(24*time.Hour)
	if !sh.ipCount || sr.fromNs > dayLo || dayHi > sr.toNs || sr.canPlace(dayLo, dayHi-1) {
		return false, nil
	}
	seq := sh.commitSeq.Load()
	if seq%2 != 0 {
		return false, nil
	}
	mem := sh.memSnapshot()
	r, err := sh.reader()
	if err != nil {
		return false, fmt.Errorf("search %s: %w", sh.day.dirName(), err)
	}
	defer r.Close()
	if sh.commitSeq.Load() != seq {
		return false, nil
	}
	n := 0
	if err := sr.eachPosting(ctx, sh, r, func(_ bindex.IndexInternalID, freq int) { n += freq }); err != nil {
		return false, err
	}
	for i := range mem {
		for j := range mem[i].evs {
			if sr.q.Match(&mem[i].evs[j]) {
				n++
			}
		}
	}
	sr.total += n
	sr.s.termCounted.Inc()
	return true, nil
}

// canPlace tells whether a block spanning [minNs, maxNs] may still hold
// one of the best k hits.
func (sr *searcher) canPlace(minNs, maxNs int64) bool {
	if len(sr.hits.h) < sr.k {
		return true
	}
	worst := sr.hits.h[0].key.ns
	if sr.hits.desc {
		return maxNs >= worst
	}
	return minNs <= worst
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// decodeState is the scratch space of one goroutine decoding frames.
type decodeState struct {
	scratch  []byte
	evs      []event.Event
	frameBuf []byte
	fc       *facetCounter // facets of the matches this goroutine counts, if asked
}

// load returns the events of candidate c: from memory, or read and
// decoded from its frame (nil if the frame is unreadable, which is logged:
// one damaged frame must not make a whole day unsearchable). With fresh,
// the events own their bytes and may be kept; otherwise they are valid
// until the next load with st.
func (sr *searcher) load(c *candidate, st *decodeState, fresh bool) []event.Event {
	if c.evs != nil {
		return c.evs
	}
	h, buf, payload, err := readFrame(c.sh.raw, c.ref.off, st.frameBuf)
	if err == nil && (h.Block != c.ref.block || int(h.Count) != c.ref.count) {
		err = errors.New("frame does not match its document")
	}
	if err == nil {
		st.frameBuf = buf
		st.evs, err = decodeFrame(sr.s.dec, st.evs[:0], h, payload, &st.scratch, fresh)
	}
	if err != nil {
		sr.s.log.Error("skipping unreadable frame", "day", c.sh.day.dirName(), "offset", c.ref.off, "err", err)
		return nil
	}
	if sr.needID {
		prefix := idPrefix(c.sh.day, c.ref.block)
		for i := range st.evs {
			st.evs[i].ID = eventID(prefix, i)
		}
	}
	return st.evs
}

// count returns how many events of c match. Safe to call from the count
// workers (match.Query is safe for concurrent use).
func (sr *searcher) count(c *candidate, st *decodeState) int {
	n := 0
	evs := sr.load(c, st, false)
	for i := range evs {
		ns := evs[i].Time.UnixNano()
		if ns >= sr.fromNs && ns < sr.toNs && sr.q.Match(&evs[i]) {
			n++
			if st.fc != nil {
				st.fc.add(&evs[i])
			}
		}
	}
	return n
}

// startCounters starts the workers that count blocks which can no longer
// place a hit (one per CPU: the main walk mostly waits for them), so exact
// totals use every core.
func (sr *searcher) startCounters() {
	workers := runtime.GOMAXPROCS(0)
	sr.work = make(chan *candidate, 256)
	for range workers {
		sr.wg.Add(1)
		go func() {
			defer sr.wg.Done()
			var st decodeState
			if sr.fc != nil {
				st.fc = newFacetCounter(sr.fc.fields)
			}
			n := 0
			for c := range sr.work {
				n += sr.count(c, &st)
			}
			sr.counted.Add(int64(n))
			if st.fc != nil {
				sr.fcMu.Lock()
				sr.fc.merge(st.fc)
				sr.fcMu.Unlock()
			}
		}()
	}
}

// stopCounters waits for the count workers and adds their counts.
func (sr *searcher) stopCounters() {
	if sr.work == nil {
		return
	}
	close(sr.work)
	sr.wg.Wait()
	sr.work = nil
	sr.total += int(sr.counted.Load())
}

// visit counts the matches of one candidate and keeps those that rank
// among the best k.
func (sr *searcher) visit(c *candidate) {
	// Can this block still place a hit? Only if the heap is not full or its
	// time span reaches past the worst kept hit.
	if !sr.canPlace(c.minNs, c.maxNs) {
		if c.minNs >= sr.fromNs && c.maxNs < sr.toNs {
			switch {
			case sr.q.MatchAll():
				// Counted from the document ID: no decoding.
				sr.total += c.ref.count
				return
			case c.hasMatches:
				// Counted by Bleve (termFreqs): no decoding.
				sr.total += c.matches
				return
			}
		}
		if sr.work == nil {
			sr.startCounters()
		}
		sr.work <- c
		return
	}
	evs := sr.load(c, &sr.st, true)
	for i := range evs {
		ev := &evs[i]
		ns := ev.Time.UnixNano()
		if ns < sr.fromNs || ns >= sr.toNs || !sr.q.Match(ev) {
			continue
		}
		sr.total++
		if sr.fc != nil {
			sr.fc.add(ev)
		}
		key := hitKey{ns: ns, day: c.sh.day, block: c.ref.block, idx: i}
		full := len(sr.hits.h) >= sr.k
		if full && !sr.hits.better(key, sr.hits.h[0].key) {
			continue
		}
		h := kept{key: key, ev: *ev}
		if h.ev.ID == "" {
			h.ev.ID = eventID(idPrefix(c.sh.day, c.ref.block), i)
		}
		if !full {
			heap.Push(&sr.hits, h)
		} else {
			sr.hits.h[0] = h
			heap.Fix(&sr.hits, 0)
		}
	}
}

// Get returns the event with the given ID (ErrNotFound if none).
func (s *Store) Get(ctx context.Context, id string) (event.Event, error) {
	d, block, idx, ok := parseEventID(id)
	if !ok {
		return event.Event{}, ErrNotFound
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return event.Event{}, ErrClosed
	}
	sh, ok := s.shards[d]
	if ok && !sh.acquire() {
		ok = false
	}
	s.mu.RUnlock()
	if !ok {
		return event.Event{}, ErrNotFound
	}
	defer sh.release()
	for _, b := range sh.memSnapshot() {
		if b.block == block {
			if idx >= len(b.evs) {
				return event.Event{}, ErrNotFound
			}
			return b.evs[idx], nil
		}
	}
	// Frames are not indexed by block number: scan the headers, which is
	// a sequential read of the day's raw file (a few MB). Get is rare
	// (incident evidence); searches never need it.
	var found bool
	var off int64
	var hdr frameHeader
	size := sh.raw.size.Load()
	err := sh.raw.scan(0, size, false, func(o int64, h frameHeader, _ []byte) bool {
		if h.Block == block {
			found, off, hdr = true, o, h
			return false
		}
		return ctx.Err() == nil
	})
	if err != nil && !errors.Is(err, errBadFrame) {
		return event.Event{}, fmt.Errorf("get %s: %w", id, err)
	}
	if err := ctx.Err(); err != nil {
		return event.Event{}, err
	}
	if !found || idx >= int(hdr.Count) {
		return event.Event{}, ErrNotFound
	}
	h, _, payload, err := sh.raw.read(off, nil)
	if err != nil {
		return event.Event{}, fmt.Errorf("get %s: %w", id, err)
	}
	evs, err := decodeFrame(s.dec, nil, h, payload, nil, true)
	if err != nil {
		return event.Event{}, fmt.Errorf("get %s: %w", id, err)
	}
	ev := evs[idx]
	ev.ID = id
	return ev, nil
}

// frameReadAhead is how much readFrame reads at once: most frames of
// slowly filled blocks are smaller, so one pread gets header and payload
// (rawFile.read takes two; the profile of an IP search over 30 days had
// ~15% in syscalls).
const frameReadAhead = 4096

// readFrame is rawFile.read in one pread for frames up to frameReadAhead.
func readFrame(r *rawFile, off int64, buf []byte) (frameHeader, []byte, []byte, error) {
	want := min(int64(frameReadAhead), r.size.Load()-off)
	if want < frameOverhead {
		return r.read(off, buf)
	}
	if int64(cap(buf)) < want {
		buf = make([]byte, frameReadAhead)
	}
	buf = buf[:want]
	if _, err := r.f.ReadAt(buf, off); err != nil {
		return r.read(off, buf)
	}
	h, err := parseFrameHeader(buf)
	n := frameOverhead + int(h.payloadLen)
	if err != nil || n > len(buf) {
		return r.read(off, buf)
	}
	buf = buf[:n]
	if _, err := checkFrame(buf); err != nil {
		return h, nil, nil, fmt.Errorf("read frame at %d: %w", off, err)
	}
	return h, buf, buf[frameHeaderSize : n-frameTrailerSize], nil
}
