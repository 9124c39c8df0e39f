// Package index stores events in day shards and searches them.
//
// Each UTC day (by event time) is a directory DATA/index/YYYY-MM-DD holding
// "raw", an append-only file of checksummed zstd frames, one per block of up
// to BlockSize events of one stream (logs: source_ip; flows: exporter and
// device), and "bleve", a Bleve
// index whose documents are whole blocks (the union of their terms, see
// index/match). A search asks Bleve for the blocks that may hold a match,
// then decodes them and verifies every event exactly. Blocks fill in memory
// and are searchable there before they are written.
package index

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/klauspost/compress/zstd"
	"github.com/segwatch/segwatch/index/match"
	"github.com/segwatch/segwatch/ingest/event"
	"golang.org/x/sync/errgroup"
)

// Config configures a Store.
type Config struct {
	// Dir is the index directory (DATA/index); day shards live below it.
	Dir string
	// Retention: events older than now-Retention are refused.
	Retention time.Duration
	// BlockSize is the most events per block (default 256).
	BlockSize int
	// FlushAge seals a block this long after it was opened even if it is
	// not full (default 6h). Quiet devices make small blocks, and small
	// blocks cost disk and CPU. Measured with `segwatch bench` at 333k
	// events a day from 2000 devices (docs/performance.md): 1h gives 10
	// events per frame and 121 B/event, 6h 22 and 92 B/event, 24h 67 and
	// 74 B/event but a 24 h facet query twice as slow (day-long blocks
	// straddle every range edge). The unsealed tail is in the journal, so
	// a long FlushAge costs memory (see MaxOpenEvents) but no crash safety.
	FlushAge time.Duration
	// MaxOpenEvents bounds the events held in unsealed blocks over all
	// days (default 500k, ~0.5 KiB each in memory): past it the oldest
	// blocks are sealed early, down to three quarters of it.
	MaxOpenEvents int
	// SyncInterval is how often at most the journal is fsynced (default
	// 1s). A process crash loses nothing (written frames are in the page
	// cache); a power loss loses at most the last SyncInterval of input.
	SyncInterval time.Duration
	// JournalSegmentAge and JournalSegmentBytes start a new journal
	// segment (defaults 5 min, 16 MiB); space is reclaimed a segment at a
	// time once all its events are sealed into raw files.
	JournalSegmentAge   time.Duration
	JournalSegmentBytes int64
	// JournalMaxBytes bounds the journal (default 512 MiB): past it, the
	// blocks that keep its oldest segment alive are sealed early.
	JournalMaxBytes int64
	// JournalCompress zstd-compresses journal frames (~10x smaller, ~1 µs
	// more CPU per event). Off by default: the journal is short-lived.
	JournalCompress bool
	// BatchDocs commits the pending block documents of a shard once this
	// many are waiting (default 128); they are also committed at FlushAge.
	// Measured (200 devices, 256-event blocks): 16 docs 31k events/cpu-s,
	// 64: 36k, 128: 48k, 256: 50k but +100 MiB peak RSS.
	BatchDocs int
}

// Deps are a Store's collaborators.
type Deps struct {
	Logger  *slog.Logger
	Metrics *metrics.Set
	Now     func() time.Time
}

// Store is the event store: day shards, the writer and search.
//
// Writes (Append, Tick, Flush) are serialized by a lock and meant to come
// from one goroutine, the index writer; searches and Get run concurrently
// with them and with each other.
type Store struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
	enc *zstd.Encoder
	dec *zstd.Decoder

	indexed  *metrics.Counter
	batchDur *metrics.Histogram
	// termCounted counts shards whose matches a search counted from
	// ip_count term frequencies instead of decoding (see countByTerm).
	termCounted *metrics.Counter

	wmu         sync.Mutex // the writer lock
	lastTick    time.Time
	lastReclaim time.Time
	encBuf      []byte // scratch for encoding blocks (writer only)
	zBuf        []byte // scratch for compressed blocks (writer only)
	j           *journal
	openEvents  int  // events in unsealed blocks (writer only)
	plan        plan // Append's scratch (writer only)
	unsealed    unsealedQueue

	mu     sync.RWMutex // guards shards and closed
	shards map[dayKey]*shard
	closed bool
}

// zstdLevel is the raw frame compression level (a variable for the
// benchmarks that compare levels). Measured with 256-event blocks: the
// default level costs no more CPU than the fastest (zstd is ~10% of the
// write path) and saves ~2.5% of raw bytes.
var zstdLevel = zstd.SpeedDefault

// ErrClosed is returned by calls on a closed Store.
var ErrClosed = errors.New("index store closed")

const (
	defaultBlockSize = 256
	defaultFlushAge  = 6 * time.Hour
	defaultBatchDocs = 128
	defaultMaxOpen   = 500_000
	defaultSync      = time.Second
	defaultSegAge    = 5 * time.Minute
	defaultSegBytes  = 16 << 20
	defaultJournal   = 512 << 20
	// reclaimEvery is how often Tick looks for journal segments to delete
	// besides after a rotation.
	reclaimEvery = 10 * time.Second
	dropPrefix   = ".drop-"
)

// Open validates cfg, opens every day shard found in cfg.Dir (recovering
// torn raw tails and unindexed frames) and returns the Store. It starts no
// goroutine besides Bleve's own; see Run.
func Open(ctx context.Context, cfg Config, deps Deps) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("index: no directory")
	}
	if cfg.Retention <= 0 {
		return nil, errors.New("index: retention must be positive")
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = defaultBlockSize
	}
	if cfg.BlockSize < 1 || cfg.BlockSize > 1<<16 {
		return nil, fmt.Errorf("index: block size %d out of 1..65536", cfg.BlockSize)
	}
	if cfg.FlushAge == 0 {
		cfg.FlushAge = defaultFlushAge
	}
	if cfg.FlushAge < 0 {
		return nil, errors.New("index: negative flush age")
	}
	if cfg.BatchDocs == 0 {
		cfg.BatchDocs = defaultBatchDocs
	}
	if cfg.BatchDocs < 1 {
		return nil, errors.New("index: batch docs must be positive")
	}
	for _, c := range []struct {
		v   *int64
		def int64
		ok  bool
	}{
		{(*int64)(&cfg.SyncInterval), int64(defaultSync), cfg.SyncInterval >= 0},
		{(*int64)(&cfg.JournalSegmentAge), int64(defaultSegAge), cfg.JournalSegmentAge >= 0},
		{&cfg.JournalSegmentBytes, defaultSegBytes, cfg.JournalSegmentBytes >= 0},
		{&cfg.JournalMaxBytes, defaultJournal, cfg.JournalMaxBytes >= 0},
	} {
		if !c.ok {
			return nil, errors.New("index: negative journal setting")
		}
		if *c.v == 0 {
			*c.v = c.def
		}
	}
	if cfg.MaxOpenEvents == 0 {
		cfg.MaxOpenEvents = defaultMaxOpen
	}
	if cfg.MaxOpenEvents < 1 {
		return nil, errors.New("index: max open events must be positive")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = metrics.NewSet()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create index dir: %w", err)
	}
	// One encoder for the single writer; blocks are small, so no
	// concurrency inside zstd either.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstdLevel),
		// Frames carry their own CRC-32C (raw.go): zstd's xxhash would be
		// a second checksum, ~5% of a frame decode.
		zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxFramePayload), zstd.IgnoreChecksum(true))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	s := &Store{
		cfg:         cfg,
		log:         deps.Logger,
		now:         deps.Now,
		enc:         enc,
		dec:         dec,
		indexed:     deps.Metrics.GetOrCreateCounter("segwatch_events_indexed_total"),
		batchDur:    deps.Metrics.GetOrCreateHistogram("segwatch_index_batch_duration_seconds"),
		termCounted: deps.Metrics.GetOrCreateCounter("segwatch_search_shards_counted_by_term_total"),
		shards:      make(map[dayKey]*shard),
	}
	err = s.openAll(ctx)
	if err == nil {
		err = s.openJournal()
	}
	if err != nil {
		if s.j != nil {
			s.j.close()
		}
		for _, sh := range s.shards {
			sh.closeFiles()
		}
		dec.Close()
		return nil, err
	}
	return s, nil
}

// openAll removes leftovers of interrupted drops and opens every shard, two
// at a time (Bleve opening is mostly CPU; the box has two cores).
func (s *Store) openAll(ctx context.Context) error {
	ents, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("list index dir: %w", err)
	}
	var days []dayKey
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), dropPrefix) {
			if err := os.RemoveAll(filepath.Join(s.cfg.Dir, e.Name())); err != nil {
				return fmt.Errorf("remove dropped shard: %w", err)
			}
			continue
		}
		if d, ok := parseDayDir(e.Name()); ok && e.IsDir() {
			days = append(days, d)
		}
	}
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for _, d := range days {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			sh, err := openShard(s.cfg.Dir, d, s.shardOpts())
			if err != nil {
				return err
			}
			mu.Lock()
			s.shards[d] = sh
			mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

func (s *Store) shardOpts() shardOpts { return shardOpts{log: s.log, enc: s.enc, dec: s.dec} }

// shardFor returns the shard of day, creating it. Writer only.
func (s *Store) shardFor(d dayKey) (*shard, error) {
	s.mu.RLock()
	sh, ok := s.shards[d]
	s.mu.RUnlock()
	if ok {
		return sh, nil
	}
	sh, err := openShard(s.cfg.Dir, d, s.shardOpts())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.shards[d] = sh
	s.mu.Unlock()
	return sh, nil
}

// Append adds events, setting each accepted event's ID in evs. Events whose
// time is outside [now-Retention, now+24h] are refused (their ID stays
// empty) and counted in refused; the caller reports them as dropped with
// reason "out_of_range". The accepted events are written to the journal as
// one frame, then put in memory: they are searchable when Append returns.
// An error from the journal write means no event was accepted (every ID is
// empty); a later error (sealing a block) means all were accepted but the
// store could not write a frame, which is retried.
func (s *Store) Append(evs []event.Event) (refused int, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.isClosed() {
		return 0, ErrClosed
	}
	now := s.now()
	lo, hi := now.Add(-s.cfg.Retention), now.Add(24*time.Hour)
	p := &s.plan
	p.reset()
	var (
		cur    *shard
		curDay dayKey
	)
	for i := range evs {
		ev := &evs[i]
		if ev.Time.Before(lo) || ev.Time.After(hi) {
			ev.ID = ""
			refused++
			continue
		}
		d := dayOf(ev.Time)
		if cur == nil || d != curDay {
			if cur, err = s.shardFor(d); err != nil {
				p.clearIDs()
				return refused, err
			}
			curDay = d
		}
		pb, err := s.planBlock(cur, d, streamOf(ev), now)
		if err != nil {
			p.clearIDs()
			return refused, err
		}
		ev.ID = eventID(pb.b.prefix, pb.n)
		p.ents = append(p.ents, jEntry{day: d, block: pb.b.block, idx: pb.n, ev: ev})
		p.to = append(p.to, pb)
		pb.n++
	}
	if len(p.ents) > 0 {
		// Journal first: an event is never searchable (nor its ID handed
		// out) unless it would survive a crash.
		if err := s.j.write(s.j.eventsFrame(s.enc, p.ents), now); err != nil {
			p.clearIDs()
			return refused, err
		}
		err = s.apply(p, now)
		s.indexed.Add(len(p.ents))
	}
	if s.openEvents > s.cfg.MaxOpenEvents {
		err = errors.Join(err, s.sealOldest(now))
	}
	if now.Sub(s.lastTick) >= time.Second {
		err = errors.Join(err, s.tick(now))
	}
	return refused, err
}

// plan is where Append places a batch's events before writing the journal:
// which block each goes to, with which index. Blocks it opens are not yet
// visible (to searches or to the store's open map).
type plan struct {
	blocks map[planKey]*plannedBlock // nil: the stream's block was closed by the plan
	ents   []jEntry
	to     []*plannedBlock // per entry
	pool   []plannedBlock
}

type planKey struct {
	day dayKey
	key streamKey
}

// plannedBlock is a block as the plan sees it: its events plus those
// planned (n), and for a new block what its opening seals.
type plannedBlock struct {
	sh         *shard
	b          *memBlock
	n          int
	isNew      bool
	registered bool
	// stale is the stream's block of the previous day: a stream that moved
	// on to a new day will not send much more for the previous one, so it
	// is sealed rather than held for FlushAge (matters when loading old
	// data quickly).
	stale   *memBlock
	staleSh *shard
}

func (p *plan) reset() {
	if p.blocks == nil {
		p.blocks = map[planKey]*plannedBlock{}
	}
	clear(p.blocks)
	clear(p.ents)
	p.ents = p.ents[:0]
	clear(p.to)
	p.to = p.to[:0]
	clear(p.pool)
	p.pool = p.pool[:0]
}

func (p *plan) clearIDs() {
	for _, e := range p.ents {
		e.ev.ID = ""
	}
}

func (p *plan) alloc(pb plannedBlock) *plannedBlock {
	// Pointers into the pool must stay valid: a full pool starts a new one.
	if len(p.pool) == cap(p.pool) {
		p.pool = make([]plannedBlock, 0, max(64, 2*cap(p.pool)))
	}
	p.pool = append(p.pool, pb)
	return &p.pool[len(p.pool)-1]
}

// planBlock returns the block with room that the next event of stream key
// on day d goes to, opening one (in the plan) if needed. Writer only.
func (s *Store) planBlock(sh *shard, d dayKey, key streamKey, now time.Time) (*plannedBlock, error) {
	p := &s.plan
	k := planKey{d, key}
	pb, seen := p.blocks[k]
	if pb != nil && pb.n < s.cfg.BlockSize {
		return pb, nil
	}
	if !seen {
		if b := sh.open[key]; b != nil && len(b.evs) < s.cfg.BlockSize {
			pb = p.alloc(plannedBlock{sh: sh, b: b, n: len(b.evs)})
			p.blocks[k] = pb
			return pb, nil
		}
	}
	num, err := sh.newBlockNumber()
	if err != nil {
		return nil, err
	}
	b := &memBlock{block: num, stream: key, opened: now, firstSeg: s.j.curSeq,
		evs: make([]event.Event, 0, min(s.cfg.BlockSize, 16))}
	b.prefix = idPrefix(d, b.block)
	npb := p.alloc(plannedBlock{sh: sh, b: b, isNew: true})
	pk := planKey{d - 1, key}
	if prev, ok := p.blocks[pk]; ok {
		if prev != nil {
			npb.stale, npb.staleSh = prev.b, prev.sh
			p.blocks[pk] = nil
		}
	} else {
		s.mu.RLock()
		psh := s.shards[d-1]
		s.mu.RUnlock()
		if psh != nil && psh.open[key] != nil {
			npb.stale, npb.staleSh = psh.open[key], psh
			p.blocks[pk] = nil
		}
	}
	p.blocks[k] = npb
	return npb, nil
}

// apply puts the planned (and journaled) events into their blocks, opening
// and sealing blocks as planned. Seal errors do not stop it: every event
// already has its ID and is in the journal.
func (s *Store) apply(p *plan, now time.Time) error {
	var errs []error
	for i, e := range p.ents {
		pb := p.to[i]
		sh, b := pb.sh, pb.b
		if pb.isNew && !pb.registered {
			pb.registered = true
			if old := sh.open[b.stream]; old != nil {
				// A full block whose sealing failed before: try again.
				errs = append(errs, s.seal(sh, old, now))
			}
			sh.open[b.stream] = b
			sh.mu.Lock()
			sh.mem = append(sh.mem, b)
			sh.mu.Unlock()
			s.unsealed.push(sh, b)
			if pb.stale != nil {
				errs = append(errs, s.seal(pb.staleSh, pb.stale, now))
			}
		}
		ns := e.ev.Time.UnixNano()
		// Readers copy slice headers under sh.mu.
		sh.mu.Lock()
		if len(b.evs) == 0 || ns < b.minNs {
			b.minNs = ns
		}
		if len(b.evs) == 0 || ns > b.maxNs {
			b.maxNs = ns
		}
		b.evs = append(b.evs, *e.ev)
		sh.mu.Unlock()
		s.openEvents++
		if len(b.evs) >= s.cfg.BlockSize {
			errs = append(errs, s.seal(sh, b, now))
		}
	}
	return errors.Join(errs...)
}

// seal writes block b as a frame and queues its document. A block whose
// frame could not be written stays unsealed (and in the journal) and is
// tried again by Tick. Writer only.
func (s *Store) seal(sh *shard, b *memBlock, now time.Time) error {
	if b.sealed || len(b.evs) == 0 {
		return nil
	}
	baseSec := floorSec(b.minNs)
	s.encBuf = s.encBuf[:0]
	for i := range b.evs {
		s.encBuf = encodeEvent(s.encBuf, &b.evs[i], baseSec)
	}
	s.zBuf = s.enc.EncodeAll(s.encBuf, s.zBuf[:0])
	h := frameHeader{Block: b.block, NextBlock: sh.nextBlock, Count: uint32(len(b.evs)), MinNs: b.minNs, MaxNs: b.maxNs}
	sh.frame = appendFrame(sh.frame[:0], h, s.zBuf)
	off, err := sh.raw.append(sh.frame)
	if err != nil {
		return err
	}
	b.sealed = true
	s.unsealed.sealed()
	sh.rawDirty = true
	s.openEvents -= len(b.evs)
	if sh.open[b.stream] == b {
		delete(sh.open, b.stream)
	}
	ref := blockRef{off: off, count: len(b.evs), block: b.block, minMs: msFloor(b.minNs), maxMs: msCeil(b.maxNs)}
	if err := sh.batch.Index(docID(ref), match.BlockDoc(b.evs)); err != nil {
		return fmt.Errorf("index block: %w", err)
	}
	if len(sh.pending) == 0 {
		sh.batchSince = now
	}
	sh.pending = append(sh.pending, b)
	if len(sh.pending) >= s.cfg.BatchDocs {
		return s.commit(sh)
	}
	return nil
}

// sealOldest seals unsealed blocks, oldest first, until at most three
// quarters of MaxOpenEvents are held: the memory bound under a burst of
// many slow streams.
func (s *Store) sealOldest(now time.Time) error {
	target := s.cfg.MaxOpenEvents / 4 * 3
	return s.sealFront(now, func(*memBlock) bool { return s.openEvents > target })
}

// sealFront seals the oldest unsealed blocks while cond holds for the
// oldest. It stops at the first error (the block stays, for the next try).
func (s *Store) sealFront(now time.Time, cond func(*memBlock) bool) error {
	for {
		r, ok := s.unsealed.front()
		if !ok || !cond(r.b) {
			return nil
		}
		if err := s.seal(r.sh, r.b, now); err != nil {
			return err
		}
	}
}

// unsealedQueue holds the unsealed blocks in the order they were opened,
// which is also the order of their first journal segments: the front is
// the oldest block and the one pinning the oldest segment. Blocks sealed
// out of order (full, or dropped with their day) are skipped when they
// reach the front and compacted away when they outnumber the live ones.
// Writer only.
type unsealedQueue struct {
	q    []unsealedRef
	head int
	live int
}

type unsealedRef struct {
	sh *shard
	b  *memBlock
}

func (u *unsealedQueue) push(sh *shard, b *memBlock) {
	u.q = append(u.q, unsealedRef{sh, b})
	u.live++
	if n := len(u.q) - u.head; n > 1024 && n > 2*u.live {
		u.q = slices.DeleteFunc(u.q[u.head:], func(r unsealedRef) bool { return r.b.sealed })
		clear(u.q[len(u.q):cap(u.q)])
		u.head = 0
	}
}

// sealed records that one block left the unsealed set.
func (u *unsealedQueue) sealed() { u.live-- }

// front returns the oldest unsealed block.
func (u *unsealedQueue) front() (unsealedRef, bool) {
	for u.head < len(u.q) && u.q[u.head].b.sealed {
		u.q[u.head] = unsealedRef{}
		u.head++
	}
	if u.head == len(u.q) {
		u.q, u.head = u.q[:0], 0
		return unsealedRef{}, false
	}
	if u.head > 1024 && u.head > len(u.q)/2 {
		n := copy(u.q, u.q[u.head:])
		clear(u.q[n:])
		u.q, u.head = u.q[:n], 0
	}
	return u.q[u.head], true
}

// all returns the queue's blocks (sealed ones included), oldest first.
func (u *unsealedQueue) all() []unsealedRef { return u.q[u.head:] }

// shardList returns the open shards (any order).
func (s *Store) shardList() []*shard {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*shard, 0, len(s.shards))
	for _, sh := range s.shards {
		out = append(out, sh)
	}
	return out
}

// commit makes the pending block documents of sh searchable in Bleve and
// then drops their in-memory copies. Writer only.
func (s *Store) commit(sh *shard) error {
	if len(sh.pending) == 0 {
		return nil
	}
	start := time.Now()
	sh.commitSeq.Add(1) // odd: blocks may be in Bleve and in mem
	defer sh.commitSeq.Add(1)
	sh.batch.SetInternal(indexedKey, []byte(strconv.FormatInt(sh.raw.size.Load(), 10)))
	if err := sh.idx.Batch(sh.batch); err != nil {
		return fmt.Errorf("commit batch %s: %w", sh.day.dirName(), err)
	}
	s.batchDur.UpdateDuration(start)
	sh.batch.Reset()
	done := make(map[*memBlock]bool, len(sh.pending))
	for _, b := range sh.pending {
		done[b] = true
	}
	sh.mu.Lock()
	sh.mem = slices.DeleteFunc(sh.mem, func(b *memBlock) bool { return done[b] })
	clear(sh.mem[len(sh.mem):cap(sh.mem)])
	sh.mu.Unlock()
	for _, b := range sh.pending {
		// No reader reaches b any more (readers took their copies of evs
		// under sh.mu); the unsealed queue may still hold b for a while.
		b.evs = nil
	}
	clear(sh.pending)
	sh.pending = sh.pending[:0]
	return nil
}

// Tick seals blocks older than FlushAge, commits batches waiting longer
// than that, fsyncs the journal if due, rotates it and deletes the segments
// no longer needed. Append calls it at most once a second; Run calls it
// when the input is idle. It is part of the write path (takes the writer
// lock).
func (s *Store) Tick(now time.Time) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.isClosed() {
		return ErrClosed
	}
	return s.tick(now)
}

func (s *Store) tick(now time.Time) error {
	s.lastTick = now
	err := s.sealFront(now, func(b *memBlock) bool { return now.Sub(b.opened) >= s.cfg.FlushAge })
	for _, sh := range s.shardList() {
		if len(sh.pending) > 0 && now.Sub(sh.batchSince) >= s.cfg.FlushAge {
			err = errors.Join(err, s.commit(sh))
		}
	}
	if s.j.due(now) {
		if e := s.j.rotate(now); e != nil {
			return errors.Join(err, e)
		}
		s.lastReclaim = time.Time{}
	}
	if now.Sub(s.lastReclaim) >= reclaimEvery {
		s.lastReclaim = now
		err = errors.Join(err, s.capJournal(now), s.reclaim())
	}
	return errors.Join(err, s.j.maybeSync(now))
}

// reclaim deletes the journal segments older than the first segment of
// every unsealed block (the oldest block's): all their events are in raw
// frames, which are fsynced first so a power loss cannot take them after
// the journal is gone. Writer only.
func (s *Store) reclaim() error {
	if len(s.j.old) == 0 {
		return nil
	}
	need := s.j.curSeq
	if r, ok := s.unsealed.front(); ok {
		need = min(need, r.b.firstSeg)
	}
	if s.j.old[0].seq >= need {
		return nil
	}
	for _, sh := range s.shardList() {
		if sh.rawDirty {
			if err := sh.raw.sync(); err != nil {
				return fmt.Errorf("sync raw: %w", err)
			}
			sh.rawDirty = false
		}
	}
	return s.j.removeBefore(need)
}

// capJournal keeps the journal under JournalMaxBytes by sealing the blocks
// that keep its oldest segments alive.
func (s *Store) capJournal(now time.Time) error {
	for s.j.size() > s.cfg.JournalMaxBytes && len(s.j.old) > 0 {
		oldest := s.j.old[0].seq
		if err := s.sealFront(now, func(b *memBlock) bool { return b.firstSeg <= oldest }); err != nil {
			return err
		}
		if err := s.reclaim(); err != nil {
			return err
		}
		if len(s.j.old) > 0 && s.j.old[0].seq == oldest {
			return nil // not reclaimed: give up until the next tick
		}
	}
	return nil
}

// Run calls Tick every second until ctx ends, so blocks are sealed even
// when no event arrives; it returns nil then. It does not close the Store.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.Tick(s.now()); err != nil && !errors.Is(err, ErrClosed) {
				s.log.Error("index tick", "err", err)
			}
		}
	}
}

// Flush seals every open block, commits every batch and syncs the raw
// files to disk. Used at shutdown and by tests.
func (s *Store) Flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.isClosed() {
		return ErrClosed
	}
	return s.flush()
}

func (s *Store) flush() error {
	now := s.now()
	var err error
	for _, r := range s.unsealed.all() {
		err = errors.Join(err, s.seal(r.sh, r.b, now))
	}
	for _, sh := range s.shardList() {
		err = errors.Join(err, s.commit(sh))
	}
	for _, sh := range s.shardList() {
		if e := sh.raw.sync(); e != nil {
			err = errors.Join(err, fmt.Errorf("sync raw: %w", e))
		} else {
			sh.rawDirty = false
		}
	}
	if err != nil {
		return err
	}
	// Everything is in raw: the journal is not needed any more.
	if s.j.curSize > 0 {
		if err := s.j.rotate(now); err != nil {
			return err
		}
	}
	return s.reclaim()
}

// Close flushes, waits for running searches and closes every shard.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.isClosed() {
		return nil
	}
	err := s.flush()
	s.mu.Lock()
	s.closed = true
	shs := s.shards
	s.shards = nil
	s.mu.Unlock()
	for _, sh := range shs {
		// Everything is sealed: the next open continues right after the
		// last number used, without the gap a crash leaves.
		if sh.reserved != sh.nextBlock {
			err = errors.Join(err, sh.writeReserved(sh.nextBlock))
		}
		_ = sh.retire(context.Background())
		err = errors.Join(err, sh.closeFiles())
	}
	err = errors.Join(err, s.j.close())
	s.dec.Close()
	return err
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// Days returns the UTC days that have a shard, oldest first.
func (s *Store) Days() []time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]time.Time, 0, len(s.shards))
	for d := range s.shards {
		out = append(out, d.time())
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// DropDay removes the shard of day's UTC date (retention): it is taken out
// of the store so new searches skip it, running searches finish, then its
// directory is renamed to a temporary name and removed, so a crash never
// leaves half a shard (Open removes leftovers). Unsealed events of that day
// are dropped too, and a drop record in the journal (fsynced before the
// directory goes) keeps replay from bringing them back. A day without a
// shard is not an error.
func (s *Store) DropDay(day time.Time) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.isClosed() {
		return ErrClosed
	}
	d := dayOf(day)
	s.mu.RLock()
	sh, ok := s.shards[d]
	s.mu.RUnlock()
	if !ok {
		return nil
	}
	now := s.now()
	if err := s.j.write(dropFrame(d), now); err != nil {
		return fmt.Errorf("drop day %s: %w", d.dirName(), err)
	}
	if err := s.j.sync(now); err != nil {
		return fmt.Errorf("drop day %s: %w", d.dirName(), err)
	}
	s.mu.Lock()
	delete(s.shards, d)
	s.mu.Unlock()
	for _, b := range sh.mem {
		if !b.sealed {
			// Gone with the day: it no longer pins the journal.
			s.openEvents -= len(b.evs)
			b.sealed = true
			s.unsealed.sealed()
		}
	}
	if err := sh.retire(context.Background()); err != nil {
		return err
	}
	if err := sh.closeFiles(); err != nil {
		s.log.Warn("close dropped shard", "day", d.dirName(), "err", err)
	}
	tmp := filepath.Join(s.cfg.Dir, dropPrefix+d.dirName())
	if err := os.Rename(sh.dir, tmp); err != nil {
		return fmt.Errorf("drop day %s: %w", d.dirName(), err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("drop day %s: %w", d.dirName(), err)
	}
	return nil
}
