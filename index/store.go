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
	// FlushAge seals a block this long after it was opened even if it is not
	// full (default 30s), bounding what a crash loses (there is no
	// write-ahead log yet). Slow devices make small blocks: at one event per
	// device every ~9 min (10M events/30 days/2000 devices) 30s gives ~1.2
	// events per frame and ~490 B/event on disk, 30m ~4.3 and ~190 B,
	// 2h ~9 and ~130 B (BenchmarkAppendRealRate).
	FlushAge time.Duration
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

	wmu      sync.Mutex // the writer lock
	lastTick time.Time
	encBuf   []byte // scratch for encoding blocks (writer only)
	zBuf     []byte // scratch for compressed blocks (writer only)

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
	defaultFlushAge  = 30 * time.Second
	defaultBatchDocs = 128
	dropPrefix       = ".drop-"
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
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstdLevel))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxFramePayload))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	s := &Store{
		cfg:      cfg,
		log:      deps.Logger,
		now:      deps.Now,
		enc:      enc,
		dec:      dec,
		indexed:  deps.Metrics.GetOrCreateCounter("segwatch_events_indexed_total"),
		batchDur: deps.Metrics.GetOrCreateHistogram("segwatch_index_batch_duration_seconds"),
		shards:   make(map[dayKey]*shard),
	}
	if err := s.openAll(ctx); err != nil {
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
// reason "out_of_range". Accepted events are searchable when Append returns.
// An error means the store could not write; events before the failing one
// are kept.
func (s *Store) Append(evs []event.Event) (refused int, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.isClosed() {
		return 0, ErrClosed
	}
	now := s.now()
	lo, hi := now.Add(-s.cfg.Retention), now.Add(24*time.Hour)
	var (
		cur    *shard
		curDay dayKey
		locked bool
	)
	unlock := func() {
		if locked {
			cur.mu.Unlock()
			locked = false
		}
	}
	defer unlock()
	accepted := 0
	for i := range evs {
		ev := &evs[i]
		if ev.Time.Before(lo) || ev.Time.After(hi) {
			ev.ID = ""
			refused++
			continue
		}
		d := dayOf(ev.Time)
		if cur == nil || d != curDay {
			unlock()
			if cur, err = s.shardFor(d); err != nil {
				s.indexed.Add(accepted)
				return refused, err
			}
			curDay = d
		}
		key := streamOf(ev)
		b := cur.open[key]
		if b == nil {
			b = &memBlock{block: cur.nextBlock, stream: key, opened: now,
				evs: make([]event.Event, 0, min(s.cfg.BlockSize, 16))}
			b.prefix = idPrefix(d, b.block)
			cur.nextBlock++
			cur.open[key] = b
			unlock()
			// A stream that moved on to a new day will not send much more
			// for the previous one: seal that block now rather than hold
			// it for FlushAge (matters when loading old data quickly).
			if err = s.sealStale(d-1, key, now); err != nil {
				s.indexed.Add(accepted)
				return refused, err
			}
			cur.mu.Lock()
			cur.mem = append(cur.mem, b)
			locked = true
		}
		ev.ID = eventID(b.prefix, len(b.evs))
		ns := ev.Time.UnixNano()
		if !locked {
			// One lock per run of events of a shard: readers copy slice
			// headers under it.
			cur.mu.Lock()
			locked = true
		}
		if len(b.evs) == 0 || ns < b.minNs {
			b.minNs = ns
		}
		if len(b.evs) == 0 || ns > b.maxNs {
			b.maxNs = ns
		}
		b.evs = append(b.evs, *ev)
		accepted++
		if len(b.evs) >= s.cfg.BlockSize {
			unlock()
			if err = s.seal(cur, b, now); err != nil {
				s.indexed.Add(accepted)
				return refused, err
			}
		}
	}
	unlock()
	s.indexed.Add(accepted)
	if now.Sub(s.lastTick) >= time.Second {
		return refused, s.tick(now)
	}
	return refused, nil
}

// seal writes block b as a frame and queues its document. Writer only.
func (s *Store) seal(sh *shard, b *memBlock, now time.Time) error {
	delete(sh.open, b.stream)
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

// sealStale seals the open block of stream key in day d, if any.
func (s *Store) sealStale(d dayKey, key streamKey, now time.Time) error {
	s.mu.RLock()
	sh := s.shards[d]
	s.mu.RUnlock()
	if sh == nil {
		return nil
	}
	if b := sh.open[key]; b != nil {
		return s.seal(sh, b, now)
	}
	return nil
}

// commit makes the pending block documents of sh searchable in Bleve and
// then drops their in-memory copies. Writer only.
func (s *Store) commit(sh *shard) error {
	if len(sh.pending) == 0 {
		return nil
	}
	start := time.Now()
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
	sh.mu.Unlock()
	clear(sh.pending)
	sh.pending = sh.pending[:0]
	return nil
}

// Tick seals blocks older than FlushAge and commits batches waiting longer
// than that. Append calls it at most once a second; Run calls it when the
// input is idle. It is part of the write path (takes the writer lock).
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
	return s.sealWhere(now, func(sh *shard, b *memBlock) bool {
		return now.Sub(b.opened) >= s.cfg.FlushAge
	}, func(sh *shard) bool {
		return len(sh.pending) > 0 && now.Sub(sh.batchSince) >= s.cfg.FlushAge
	})
}

func (s *Store) sealWhere(now time.Time, sealIt func(*shard, *memBlock) bool, commitIt func(*shard) bool) error {
	s.mu.RLock()
	shs := make([]*shard, 0, len(s.shards))
	for _, sh := range s.shards {
		shs = append(shs, sh)
	}
	s.mu.RUnlock()
	var errs []error
	for _, sh := range shs {
		var seal []*memBlock
		for _, b := range sh.open {
			if sealIt(sh, b) {
				seal = append(seal, b)
			}
		}
		// Seal in block order so frames (and the high-water mark) follow
		// the order blocks were opened in.
		slices.SortFunc(seal, func(a, b *memBlock) int { return int(a.block) - int(b.block) })
		for _, b := range seal {
			if err := s.seal(sh, b, now); err != nil {
				errs = append(errs, err)
			}
		}
		if commitIt(sh) {
			if err := s.commit(sh); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
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
	err := s.sealWhere(s.now(), func(*shard, *memBlock) bool { return true }, func(*shard) bool { return true })
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, sh := range s.shards {
		if e := sh.raw.sync(); e != nil {
			err = errors.Join(err, fmt.Errorf("sync raw: %w", e))
		}
	}
	return err
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
		_ = sh.retire(context.Background())
		err = errors.Join(err, sh.closeFiles())
	}
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
// are dropped too. A day without a shard is not an error.
func (s *Store) DropDay(day time.Time) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	d := dayOf(day)
	s.mu.Lock()
	sh, ok := s.shards[d]
	if ok {
		delete(s.shards, d)
	}
	s.mu.Unlock()
	if !ok {
		return nil
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
