package index

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	bindex "github.com/blevesearch/bleve_index_api"
	"github.com/klauspost/compress/zstd"
	"github.com/segwatch/segwatch/index/match"
	"github.com/segwatch/segwatch/ingest/event"
)

// indexedKey is the Bleve internal key holding the raw offset up to which
// every frame has its block document committed. It is written in the same
// batch as the documents, so after a crash the frames past it are indexed
// again on open and none is indexed twice.
var indexedKey = []byte("segwatch.raw_indexed")

// ipCountKey marks a shard index created with the ip_count field
// (match.FieldIPCount) in every block document, so IPv4 queries may be
// counted from its term frequencies. Shards created before have none and
// are counted by decoding.
var ipCountKey = []byte("segwatch.ip_count")

// memBlock is a block still in memory: open (receiving events of its
// stream) or sealed and written to raw but not yet committed to Bleve.
// Searches read it from memory until the commit that makes it findable.
type memBlock struct {
	block  uint32
	prefix string // event ID prefix
	stream streamKey
	opened time.Time // wall clock, for the flush age
	// evs only grows while the block is open, and is never reused after,
	// so a reader may keep evs[:n] taken under shard.mu without copying.
	evs          []event.Event
	minNs, maxNs int64
	// Writer-only: the journal segment holding the block's first event
	// (segments from it on are kept while the block is unsealed) and
	// whether its frame is in raw.
	firstSeg uint64
	sealed   bool
}

// streamKey groups a device's events into the same blocks: by kind, the
// address that sent them and the device (or, for logs of a device not in
// the inventory, the syslog host). One exporter reports the flows of every
// device, and one relay (rsyslog, or `segwatch simulate` from 127.0.0.1)
// forwards the logs of many: keyed by address alone, "device X" searches
// would find X in every block of the exporter or relay (measured: every
// flow block decoded; see BenchmarkStreamKeyRelay for logs).
type streamKey struct{ kind, source, device string }

// streamByDevice is false only in the benchmark that measures the old key.
var streamByDevice = true

func streamOf(ev *event.Event) streamKey {
	dev := ev.Device
	if dev == "" && ev.Kind != event.KindFlow {
		dev = ev.Host
	}
	if !streamByDevice && ev.Kind != event.KindFlow {
		dev = ""
	}
	return streamKey{ev.Kind, ev.SourceIP, dev}
}

// shard is one UTC day: its raw file and its Bleve index of block documents.
type shard struct {
	day  dayKey
	dir  string
	raw  *rawFile
	idx  bleve.Index
	refs atomic.Int64  // readers plus one for the store
	done chan struct{} // closed when refs drops to zero

	mu  sync.Mutex  // guards mem
	mem []*memBlock // open and sealed-uncommitted blocks

	// ipCount: every block document has ip_count (see ipCountKey).
	ipCount bool
	// commitSeq is odd while a commit runs: its blocks are in Bleve before
	// they leave mem. A reader that sees the same even value before its
	// mem snapshot and after opening its Bleve reader knows that no block
	// is in both (see countByTerm).
	commitSeq atomic.Uint64

	// Writer-only state (the store's writer lock).
	nextBlock  uint32
	open       map[streamKey]*memBlock
	pending    []*memBlock // sealed, in the batch, not committed
	batch      *bleve.Batch
	batchSince time.Time
	frame      []byte // scratch for building frames
	rawDirty   bool   // frames written since the raw file's last fsync
	// reserved bounds the block numbers handed out: it is durable in the
	// file "next" before any number at or above the old bound is used, so
	// even a power loss that takes the journal's tail cannot make a
	// restart hand out an ID again.
	reserved uint32
}

// reserveStep is how many block numbers are reserved at a time: one fsync
// per that many blocks, and at most that many numbers skipped after a
// crash (none after a clean Close, which writes the exact next number).
const reserveStep = 1024

const nextFile = "next"

// readReserved returns the block number bound stored in dir (0 if none).
func readReserved(dir string) (uint32, error) {
	b, err := os.ReadFile(filepath.Join(dir, nextFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read block reservation: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad block reservation %q in %s", b, dir)
	}
	return uint32(n), nil
}

// writeReserved stores bound durably: temporary file, fsync, rename,
// fsync of the directory.
func (sh *shard) writeReserved(bound uint32) error {
	tmp := filepath.Join(sh.dir, nextFile+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("reserve blocks: %w", err)
	}
	_, err = f.WriteString(strconv.FormatUint(uint64(bound), 10) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(sh.dir, nextFile))
	}
	if err == nil {
		err = syncDir(sh.dir)
	}
	if err != nil {
		return fmt.Errorf("reserve blocks: %w", err)
	}
	sh.reserved = bound
	return nil
}

// newBlockNumber hands out the next block number, reserving more first
// when needed. Writer only.
func (sh *shard) newBlockNumber() (uint32, error) {
	if sh.nextBlock >= sh.reserved {
		if err := sh.writeReserved(sh.nextBlock + reserveStep); err != nil {
			return 0, err
		}
	}
	n := sh.nextBlock
	sh.nextBlock++
	return n, nil
}

// shardOpts is what opening a shard needs from the store.
type shardOpts struct {
	log *slog.Logger
	enc *zstd.Encoder
	dec *zstd.Decoder
}

func scorchConfig() map[string]any {
	return map[string]any{
		// Fewer, larger merges: BLEVE-NOTES measured ~10% less CPU.
		"scorchMergePlanOptions": map[string]any{"MaxSegmentsPerTier": 30, "SegmentsPerMergeTask": 10},
	}
}

// openShard opens (or creates) the shard of day under root, cuts a torn raw
// tail and indexes frames the Bleve index lacks.
func openShard(root string, day dayKey, o shardOpts) (*shard, error) {
	dir := filepath.Join(root, day.dirName())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create shard dir: %w", err)
	}
	raw, err := openRaw(filepath.Join(dir, "raw"), o.log)
	if err != nil {
		return nil, err
	}
	bpath := filepath.Join(dir, "bleve")
	var idx bleve.Index
	if _, err := os.Stat(filepath.Join(bpath, "index_meta.json")); err == nil {
		idx, err = bleve.OpenUsing(bpath, scorchConfig())
		if err != nil {
			raw.close()
			return nil, fmt.Errorf("open shard index %s: %w", day.dirName(), err)
		}
	} else {
		// A half-created index (crash during creation) is rebuilt from raw.
		_ = os.RemoveAll(bpath)
		idx, err = bleve.NewUsing(bpath, match.Mapping(), scorch.Name, scorch.Name, scorchConfig())
		if err != nil {
			raw.close()
			return nil, fmt.Errorf("create shard index %s: %w", day.dirName(), err)
		}
		// Before any document: every document of this index has ip_count.
		if err := idx.SetInternal(ipCountKey, []byte("1")); err != nil {
			idx.Close()
			raw.close()
			return nil, fmt.Errorf("create shard index %s: %w", day.dirName(), err)
		}
	}
	ipc, err := idx.GetInternal(ipCountKey)
	if err != nil {
		idx.Close()
		raw.close()
		return nil, fmt.Errorf("open shard index %s: %w", day.dirName(), err)
	}
	reserved, err := readReserved(dir)
	if err != nil {
		idx.Close()
		raw.close()
		return nil, err
	}
	sh := &shard{
		day:       day,
		dir:       dir,
		raw:       raw,
		idx:       idx,
		done:      make(chan struct{}),
		nextBlock: max(raw.last.NextBlock, reserved),
		reserved:  reserved,
		open:      make(map[streamKey]*memBlock),
		batch:     idx.NewBatch(),
		ipCount:   string(ipc) == "1",
	}
	sh.refs.Store(1)
	if err := sh.catchUp(o); err != nil {
		sh.closeFiles()
		return nil, err
	}
	return sh, nil
}

// catchUp indexes the raw frames written after the last commit (a crash
// between writing frames and committing their documents).
func (sh *shard) catchUp(o shardOpts) error {
	v, err := sh.idx.GetInternal(indexedKey)
	if err != nil {
		return fmt.Errorf("read indexed offset: %w", err)
	}
	var from int64
	if len(v) > 0 {
		from, err = strconv.ParseInt(string(v), 10, 64)
		if err != nil || from < 0 {
			return fmt.Errorf("bad indexed offset %q", v)
		}
	}
	if from > sh.raw.size.Load() || sh.raw.cut {
		// The raw tail was cut: documents may point at frames that are
		// gone, and new frames will be written where they were.
		if err := sh.purgeFrom(sh.raw.size.Load()); err != nil {
			return err
		}
		from = min(from, sh.raw.size.Load())
	}
	if from == sh.raw.size.Load() {
		return nil
	}
	var n int
	var evs []event.Event
	var derr error
	err = sh.raw.scan(from, sh.raw.size.Load(), true, func(off int64, h frameHeader, payload []byte) bool {
		evs, derr = decodeFrame(o.dec, evs[:0], h, payload, nil, false)
		if derr != nil {
			derr = fmt.Errorf("frame at %d: %w", off, derr)
			return false
		}
		ref := blockRef{off: off, count: int(h.Count), block: h.Block, minMs: msFloor(h.MinNs), maxMs: msCeil(h.MaxNs)}
		if derr = sh.batch.Index(docID(ref), match.BlockDoc(evs)); derr != nil {
			return false
		}
		n++
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("reindex %s: %w", sh.day.dirName(), err)
	}
	sh.batch.SetInternal(indexedKey, []byte(strconv.FormatInt(sh.raw.size.Load(), 10)))
	if err := sh.idx.Batch(sh.batch); err != nil {
		return fmt.Errorf("reindex %s: %w", sh.day.dirName(), err)
	}
	sh.batch.Reset()
	o.log.Info("indexed frames missing from the shard index", "day", sh.day.dirName(), "frames", n)
	return nil
}

// purgeFrom deletes the documents of frames at or after off. Only after a
// crash: it walks every document ID of the shard.
func (sh *shard) purgeFrom(off int64) error {
	r, err := sh.reader()
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	defer r.Close()
	it, err := r.DocIDReaderAll()
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	defer it.Close()
	for {
		id, err := it.Next()
		if err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		if id == nil {
			break
		}
		ext, err := r.ExternalID(id)
		if err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		if ref, ok := parseDocID(ext); !ok || ref.off >= off {
			sh.batch.Delete(ext)
		}
	}
	sh.batch.SetInternal(indexedKey, []byte(strconv.FormatInt(off, 10)))
	if err := sh.idx.Batch(sh.batch); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	sh.batch.Reset()
	return nil
}

// decodeFrame decompresses a frame payload and decodes its events,
// appending to dst. With fresh, the decompressed bytes get their own
// allocation that the returned strings keep alive; without, scratch is
// reused and the events are valid only until the next call with it.
func decodeFrame(dec *zstd.Decoder, dst []event.Event, h frameHeader, payload []byte, scratch *[]byte, fresh bool) ([]event.Event, error) {
	var buf []byte
	if !fresh && scratch != nil {
		buf = (*scratch)[:0]
	}
	buf, err := dec.DecodeAll(payload, buf)
	if err != nil {
		return dst, fmt.Errorf("decompress: %w", err)
	}
	if !fresh && scratch != nil {
		*scratch = buf
	}
	var s string
	if len(buf) > 0 {
		// The bytes are never written again (fresh) or not before the
		// events are dropped (scratch), so a string view is safe.
		s = unsafe.String(&buf[0], len(buf))
	}
	return decodeEvents(dst, s, int(h.Count), floorSec(h.MinNs))
}

func floorSec(ns int64) int64 {
	s := ns / 1e9
	if ns < 0 && ns%1e9 != 0 {
		s--
	}
	return s
}

// acquire takes a reader reference; false if the shard is being dropped.
func (sh *shard) acquire() bool {
	for {
		n := sh.refs.Load()
		if n <= 0 {
			return false
		}
		if sh.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (sh *shard) release() {
	if sh.refs.Add(-1) == 0 {
		close(sh.done)
	}
}

// retire drops the store's reference and waits until readers let go.
func (sh *shard) retire(ctx context.Context) error {
	sh.release()
	select {
	case <-sh.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (sh *shard) closeFiles() error {
	return errors.Join(sh.idx.Close(), sh.raw.close())
}

// memSnapshot returns the in-memory blocks as readers may use them.
// reader opens a snapshot reader of the shard's Bleve index, for work
// below bleve's search API (document IDs, postings); the caller closes it.
func (sh *shard) reader() (bindex.IndexReader, error) {
	ix, err := sh.idx.Advanced()
	if err != nil {
		return nil, err
	}
	return ix.Reader()
}

func (sh *shard) memSnapshot() []memBlock {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	out := make([]memBlock, 0, len(sh.mem))
	for _, b := range sh.mem {
		if len(b.evs) > 0 {
			out = append(out, memBlock{block: b.block, evs: b.evs[:len(b.evs):len(b.evs)], minNs: b.minNs, maxNs: b.maxNs})
		}
	}
	return out
}
