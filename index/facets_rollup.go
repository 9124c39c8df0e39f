package index

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/segwatch/segwatch/ingest/event"
)

// Facet rollups: for match-all facets ("top hosts over the last 24 h") the
// counts come from per-shard, per-hour value counts kept in memory instead
// of decoding every event of the range each time (BLEVE-NOTES finding 9).
//
// A rollup is built lazily, the first time a field is faceted on a shard,
// from the shard's raw frames (one sequential read and decode of the day),
// and then extended with the frames appended since, on each use: frames
// are immutable once written, so counts never need to be corrected. Only
// the hours entirely inside the requested range are taken from the rollup;
// the frames overlapping the one or two partial hours at its edges are
// decoded and their events counted one by one, so the counts are exact.
// Blocks still in memory are counted from memory, unless their frame is
// already in the rollup (tracked by block number).
//
// Memory: per shard and field, 24 counters per distinct value (4 B each)
// plus the value itself: ~200 KB for 2000 hosts.

// facetRollups maps a shard to its rollup. It is a side table rather than
// a field of shard only because shard.go belongs to the write path; the
// key is weak and a cleanup deletes the entry, so a dropped shard's rollup
// is freed with the shard.
var facetRollups sync.Map // weak.Pointer[shard] -> *facetRollup

// errNoRollup tells that a shard's rollup cannot be used (a frame header
// that does not parse): its facets are counted by decoding instead.
var errNoRollup = errors.New("facet rollup unavailable")

// frameSpan locates one frame of a rollup's shard.
type frameSpan struct {
	off          int64
	minNs, maxNs int64
}

// dirFrame is one frame of the directory.
type dirFrame struct {
	off          int64
	minNs, maxNs int64
	block        uint32
	count        uint32
}

// fieldRollup is the per-hour value counts of one facet field in a shard.
type fieldRollup struct {
	ids   map[facetVal]uint32
	vals  []facetVal
	hours [24][]uint32 // hours[h][id]
}

func (fr *fieldRollup) add(v facetVal, hour int) {
	id, ok := fr.ids[v]
	if !ok {
		v.s = strings.Clone(v.s) // decoded into a reused buffer
		id = uint32(len(fr.vals))
		fr.ids[v] = id
		fr.vals = append(fr.vals, v)
	}
	h := fr.hours[hour]
	for int(id) >= len(h) {
		h = append(h, 0)
	}
	h[id]++
	fr.hours[hour] = h
}

// facetRollup is a shard's rollup; mu guards everything.
type facetRollup struct {
	mu     sync.Mutex
	dayNs  int64 // start of the shard's day
	off    int64 // frames before off are counted in every field rollup
	frames []frameSpan
	blocks []uint64 // bitset of block numbers whose frame is counted
	fields map[*facetField]*fieldRollup
	broken bool

	// The frame directory, from frame headers alone (no decoding): every
	// frame of the shard before dirOff with its block, event count and
	// time span. Match-all searches take their candidates and totals from
	// it instead of listing every block document through Bleve.
	dir       []dirFrame
	dirOff    int64
	dirBlocks []uint64 // bitset of the blocks in dir
	dirEvents int      // events in dir
	dirBroken bool
	// scratch for decoding while building
	st decodeState
}

func rollupOf(sh *shard) *facetRollup {
	k := weak.Make(sh)
	if v, ok := facetRollups.Load(k); ok {
		return v.(*facetRollup)
	}
	fr := &facetRollup{dayNs: sh.day.time().UnixNano(), fields: make(map[*facetField]*fieldRollup)}
	v, loaded := facetRollups.LoadOrStore(k, fr)
	if !loaded {
		runtime.AddCleanup(sh, func(k weak.Pointer[shard]) { facetRollups.Delete(k) }, k)
	}
	return v.(*facetRollup)
}

func (r *facetRollup) hasBlock(b uint32) bool { return hasBit(r.blocks, b) }

func (r *facetRollup) setBlock(b uint32) { r.blocks = setBit(r.blocks, b) }

func hasBit(set []uint64, b uint32) bool {
	i := int(b / 64)
	return i < len(set) && set[i]&(1<<(b%64)) != 0
}

func setBit(set []uint64, b uint32) []uint64 {
	i := int(b / 64)
	for i >= len(set) {
		set = append(set, 0)
	}
	set[i] |= 1 << (b % 64)
	return set
}

// shardView is what a match-all search needs of a shard without Bleve:
// its frames (a prefix of the directory, which only grows), the memory
// blocks whose frames are not among them, and the number of events.
type shardView struct {
	frames []dirFrame
	mem    []memBlock
	events int
}

// view returns the shard's directory brought up to date, or false if the
// directory cannot be read (then the caller uses Bleve).
func (r *facetRollup) view(sh *shard) (shardView, bool) {
	// Memory first, then the raw size (see rollupFacets).
	mem := sh.memSnapshot()
	size := sh.raw.size.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dirBroken {
		return shardView{}, false
	}
	if size > r.dirOff {
		err := sh.raw.scan(r.dirOff, size, false, func(off int64, h frameHeader, _ []byte) bool {
			r.dir = append(r.dir, dirFrame{off: off, minNs: h.MinNs, maxNs: h.MaxNs, block: h.Block, count: h.Count})
			r.dirBlocks = setBit(r.dirBlocks, h.Block)
			r.dirEvents += int(h.Count)
			return true
		})
		if err != nil {
			r.dirBroken = true
			r.dir, r.dirBlocks = nil, nil
			return shardView{}, false
		}
		r.dirOff = size
	}
	v := shardView{frames: r.dir[:len(r.dir):len(r.dir)], events: r.dirEvents}
	for _, b := range mem {
		if !hasBit(r.dirBlocks, b.block) {
			v.mem = append(v.mem, b)
			v.events += len(b.evs)
		}
	}
	return v, true
}

func (r *facetRollup) hourOf(ns int64) int {
	return min(max(int((ns-r.dayNs)/int64(time.Hour)), 0), 23)
}

// update brings the rollup up to raw offset size for fields, building the
// field rollups that do not exist yet. Called with r.mu held.
func (r *facetRollup) update(ctx context.Context, s *Store, sh *shard, fields []*facetField, size int64) error {
	if r.broken {
		return errNoRollup
	}
	var fresh []*fieldRollup
	for _, f := range fields {
		if r.fields[f] == nil {
			fr := &fieldRollup{ids: make(map[facetVal]uint32)}
			r.fields[f] = fr
			fresh = append(fresh, fr)
		}
	}
	if len(fresh) > 0 && r.off > 0 {
		// New fields need the frames already known; only they count those.
		fs := make([]*facetField, 0, len(fresh))
		for f, fr := range r.fields {
			if slices.Contains(fresh, fr) {
				fs = append(fs, f)
			}
		}
		if err := r.scan(ctx, s, sh, 0, r.off, fs, false); err != nil {
			return r.fail(s, sh, err)
		}
	}
	if size > r.off {
		all := make([]*facetField, 0, len(r.fields))
		for f := range r.fields {
			all = append(all, f)
		}
		if err := r.scan(ctx, s, sh, r.off, size, all, true); err != nil {
			return r.fail(s, sh, err)
		}
		r.off = size
	}
	return nil
}

func (r *facetRollup) fail(s *Store, sh *shard, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The rollup is half built: start it again next time.
		clear(r.fields)
		r.off, r.frames, r.blocks = 0, nil, nil
		return err
	}
	s.log.Error("facet rollup unavailable, counting facets by decoding", "day", sh.day.dirName(), "err", err)
	r.broken = true
	r.fields, r.frames, r.blocks = nil, nil, nil
	return errNoRollup
}

// scan counts the events of the frames in [from, to) into the rollups of
// fields; with record, it also records the frames and their blocks. A
// frame that fails its checksum is skipped (as searches skip it); a frame
// header that does not parse ends the rollup.
func (r *facetRollup) scan(ctx context.Context, s *Store, sh *shard, from, to int64, fields []*facetField, record bool) error {
	frs := make([]*fieldRollup, len(fields))
	for i, f := range fields {
		frs[i] = r.fields[f]
	}
	for from < to {
		next := from
		err := sh.raw.scan(from, to, true, func(off int64, h frameHeader, payload []byte) bool {
			next = off + frameOverhead + int64(h.payloadLen)
			var derr error
			r.st.evs, derr = decodeFrame(s.dec, r.st.evs[:0], h, payload, &r.st.scratch, false)
			if record {
				r.setBlock(h.Block)
			}
			if derr != nil {
				// Searches skip it too (and log it).
				return ctx.Err() == nil
			}
			for i := range r.st.evs {
				ev := &r.st.evs[i]
				hour := r.hourOf(ev.Time.UnixNano())
				for j, f := range fields {
					if v, ok := f.get(ev); ok {
						frs[j].add(v, hour)
					}
				}
			}
			if record {
				r.frames = append(r.frames, frameSpan{off: off, minNs: h.MinNs, maxNs: h.MaxNs})
			}
			return ctx.Err() == nil
		})
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err == nil {
			return nil
		}
		// scan stopped at the frame at next: skip it if its header says
		// how long it is.
		h, _, _, rerr := sh.raw.read(next, nil)
		if h.Count == 0 || rerr == nil {
			return fmt.Errorf("frame at %d: %w", next, err)
		}
		s.log.Error("facet rollup: skipping damaged frame", "day", sh.day.dirName(), "offset", next, "err", rerr)
		if record {
			// Searches skip it too; remember the block so that a memory
			// copy is not counted either.
			r.setBlock(h.Block)
		}
		from = next + frameOverhead + int64(h.payloadLen)
	}
	return nil
}

// rollupFacets adds to fc the facet counts of every event of sh in
// [fromNs, toNs), from the rollup for whole hours and by decoding for the
// rest. errNoRollup means the caller must count this shard another way.
func (sr *searcher) rollupFacets(ctx context.Context, sh *shard, fc *facetCounter) error {
	r := rollupOf(sh)
	// Memory first, then the raw size: a block sealed in between is then in
	// both and deduplicated by number, and none can be in neither.
	mem := sh.memSnapshot()
	size := sh.raw.size.Load()
	dayEnd := r.dayNs + int64(24*time.Hour)
	lo, hi := max(sr.fromNs, r.dayNs), min(sr.toNs, dayEnd)
	if lo >= hi {
		return nil
	}
	// Whole hours [h0, h1) come from the rollup.
	hour := int64(time.Hour)
	h0 := int((lo - r.dayNs + hour - 1) / hour)
	h1 := int((hi - r.dayNs) / hour)
	if h1 < h0 {
		h1 = h0
	}
	wholeLo, wholeHi := r.dayNs+int64(h0)*hour, r.dayNs+int64(h1)*hour
	if h0 == h1 {
		wholeLo, wholeHi = hi, hi // nothing whole: everything is an edge
	}
	inEdge := func(ns int64) bool { return ns >= lo && ns < hi && (ns < wholeLo || ns >= wholeHi) }
	spanInEdge := func(minNs, maxNs int64) bool {
		return maxNs >= lo && minNs < hi && (minNs < wholeLo || maxNs >= wholeHi)
	}

	r.mu.Lock()
	if err := r.update(ctx, sr.s, sh, fc.fields, size); err != nil {
		r.mu.Unlock()
		return err
	}
	for i, f := range fc.fields {
		fr := r.fields[f]
		for h := h0; h < h1; h++ {
			for id, n := range fr.hours[h] {
				if n > 0 {
					fc.addN(i, fr.vals[id], int(n))
				}
			}
		}
	}
	var edge []frameSpan
	for _, f := range r.frames {
		if spanInEdge(f.minNs, f.maxNs) {
			edge = append(edge, f)
		}
	}
	var memEvs [][]event.Event
	for i := range mem {
		if !r.hasBlock(mem[i].block) && mem[i].maxNs >= lo && mem[i].minNs < hi {
			memEvs = append(memEvs, mem[i].evs)
		}
	}
	r.mu.Unlock()

	for _, evs := range memEvs {
		for i := range evs {
			if ns := evs[i].Time.UnixNano(); ns >= lo && ns < hi {
				fc.add(&evs[i])
			}
		}
	}
	// Edge frames are decoded by one worker per CPU, each counting into
	// its own counter (merged at the end), as exact totals are: with blocks
	// spanning hours, the edges of a 24-hour range hold many frames.
	workers := min(runtime.GOMAXPROCS(0), max(len(edge)/minEdgeFramesPerWorker, 1))
	counters := make([]*facetCounter, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		counters[w] = fc
		if w > 0 {
			counters[w] = newFacetCounter(fc.fields)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st decodeState
			for k := w; k < len(edge); k += workers {
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				f := edge[k]
				h, buf, payload, err := readFrame(sh.raw, f.off, st.frameBuf)
				if err == nil {
					st.frameBuf = buf
					st.evs, err = decodeFrame(sr.s.dec, st.evs[:0], h, payload, &st.scratch, false)
				}
				if err != nil {
					sr.s.log.Error("skipping unreadable frame", "day", sh.day.dirName(), "offset", f.off, "err", err)
					continue
				}
				for i := range st.evs {
					if inEdge(st.evs[i].Time.UnixNano()) {
						counters[w].add(&st.evs[i])
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range counters[1:] {
		fc.merge(c)
	}
	return errors.Join(errs...)
}

// minEdgeFramesPerWorker keeps small edges on one goroutine: below it the
// start-up and merge cost more than they save.
const minEdgeFramesPerWorker = 32

// allFacets counts the facets of every event in the searched range (a
// match-all query): from each shard's rollup, or, for a shard without one,
// by decoding its candidate blocks.
func (sr *searcher) allFacets(ctx context.Context, shs []*shard, fields []*facetField) (*facetCounter, error) {
	fc := newFacetCounter(fields)
	for _, sh := range shs {
		err := sr.rollupFacets(ctx, sh, fc)
		if !errors.Is(err, errNoRollup) {
			if err != nil {
				return nil, err
			}
			continue
		}
		cands, err := sr.candidates(ctx, sh, sr.q.Block())
		if err != nil {
			return nil, err
		}
		st := decodeState{fc: fc}
		for i := range cands {
			sr.count(&cands[i], &st)
		}
	}
	return fc, nil
}
