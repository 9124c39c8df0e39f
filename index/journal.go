package index

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/segwatch/segwatch/ingest/event"
)

// The journal is the write-ahead log of the unsealed tail: every Append
// writes its accepted events, with their IDs, as one frame to the current
// journal segment before they become searchable in memory. A segment is a
// file DIR/journal/<seq hex>.wal of frames in the raw file's layout (see
// raw.go) with the magic "SWJ"; the header's fields mean:
//
//	Block      record type: jEvents or jDrop
//	NextBlock  flags: jZstd when the payload is zstd-compressed
//	Count      events in the record
//	MinNs      base of the event times (as in raw frames)
//
// An events payload is, per event: varint day, uvarint block, uvarint
// index in the block, then the event in the raw codec. A drop payload is
// the varint day that DropDay removed: replay forgets that day's earlier
// events, so a dropped day is never resurrected.
//
// Durability: frames are written with one write call each, so a process
// crash loses nothing (the page cache survives it); the segment is fsynced
// at most every Config.SyncInterval, so a power loss can lose up to that
// much of the most recent input.
//
// Space: a new segment is started every Config.JournalSegmentAge or
// JournalSegmentBytes. Every open block remembers the segment that holds
// its first event (firstSeg); a segment older than every open block's
// firstSeg holds only events of sealed blocks, whose frames are in raw
// files, and is deleted once those raw files are fsynced. Blocks pinning
// the oldest segment are sealed early when the journal outgrows
// Config.JournalMaxBytes, which bounds it even under bursts.

// Journal record types and flags.
const (
	jEvents = 1
	jDrop   = 2
	jZstd   = 1
)

const journalDir = "journal"

// jSeg is a closed journal segment.
type jSeg struct {
	seq  uint64
	size int64
}

// journal is the writer side of the journal. Writer only (the store's
// writer lock).
type journal struct {
	dir       string
	log       *slog.Logger
	syncEvery time.Duration
	segBytes  int64
	segAge    time.Duration
	compress  bool

	cur       *os.File
	curSeq    uint64
	curSize   int64
	curOpened time.Time
	lastSync  time.Time
	unsynced  bool
	old       []jSeg // closed segments still needed, oldest first

	buf, zbuf []byte
}

func segName(seq uint64) string { return fmt.Sprintf("%016x.wal", seq) }

func parseSegName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, ".wal")
	if !ok || len(hex) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(hex, 16, 64)
	return n, err == nil
}

// listSegments returns the journal's segments, oldest first.
func listSegments(dir string) ([]jSeg, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list journal: %w", err)
	}
	var out []jSeg
	for _, e := range ents {
		seq, ok := parseSegName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("list journal: %w", err)
		}
		out = append(out, jSeg{seq: seq, size: fi.Size()})
	}
	slices.SortFunc(out, func(a, b jSeg) int { return cmp.Compare(a.seq, b.seq) })
	return out, nil
}

// start opens a new segment after the existing ones. The directory is
// fsynced so the new name survives a power loss.
func (j *journal) start(now time.Time) error {
	j.curSeq++
	f, err := os.OpenFile(filepath.Join(j.dir, segName(j.curSeq)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create journal segment: %w", err)
	}
	if err := syncDir(j.dir); err != nil {
		f.Close()
		return err
	}
	j.cur, j.curSize, j.curOpened, j.lastSync, j.unsynced = f, 0, now, now, false
	return nil
}

// rotate closes the current segment (fsynced) and starts the next one.
func (j *journal) rotate(now time.Time) error {
	if err := j.cur.Sync(); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	if err := j.cur.Close(); err != nil {
		return fmt.Errorf("close journal segment: %w", err)
	}
	j.old = append(j.old, jSeg{seq: j.curSeq, size: j.curSize})
	return j.start(now)
}

// due tells whether the current segment should be rotated.
func (j *journal) due(now time.Time) bool {
	return j.curSize > 0 && (j.curSize >= j.segBytes || now.Sub(j.curOpened) >= j.segAge)
}

// write appends one frame to the current segment, fsyncing if the last
// sync is SyncInterval old.
func (j *journal) write(frame []byte, now time.Time) error {
	if _, err := j.cur.Write(frame); err != nil {
		// A partial write is cut off so the next frame starts clean (and
		// replay would cut it anyway as a torn tail).
		_ = j.cur.Truncate(j.curSize)
		_, _ = j.cur.Seek(j.curSize, 0)
		return fmt.Errorf("write journal: %w", err)
	}
	j.curSize += int64(len(frame))
	j.unsynced = true
	return j.maybeSync(now)
}

func (j *journal) maybeSync(now time.Time) error {
	if !j.unsynced || now.Sub(j.lastSync) < j.syncEvery {
		return nil
	}
	return j.sync(now)
}

func (j *journal) sync(now time.Time) error {
	if err := j.cur.Sync(); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	j.lastSync, j.unsynced = now, false
	return nil
}

// size is the journal's total size on disk.
func (j *journal) size() int64 {
	n := j.curSize
	for _, s := range j.old {
		n += s.size
	}
	return n
}

// removeBefore deletes the closed segments older than seq. The caller has
// made sure their events are durable elsewhere.
func (j *journal) removeBefore(seq uint64) error {
	n := 0
	for _, s := range j.old {
		if s.seq >= seq {
			break
		}
		if err := os.Remove(filepath.Join(j.dir, segName(s.seq))); err != nil && !os.IsNotExist(err) {
			j.old = j.old[n:]
			return fmt.Errorf("remove journal segment: %w", err)
		}
		n++
	}
	j.old = j.old[n:]
	return nil
}

func (j *journal) close() error {
	if j.cur == nil {
		return nil
	}
	err := j.cur.Sync()
	if e := j.cur.Close(); err == nil {
		err = e
	}
	j.cur = nil
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}

// jEntry is one event as the journal records it.
type jEntry struct {
	day   dayKey
	block uint32
	idx   int
	ev    *event.Event
}

// appendEventsFrame builds the journal frame of one Append into j.buf.
func (j *journal) eventsFrame(enc *zstd.Encoder, ents []jEntry) []byte {
	minNs, maxNs := ents[0].ev.Time.UnixNano(), ents[0].ev.Time.UnixNano()
	for _, e := range ents[1:] {
		ns := e.ev.Time.UnixNano()
		minNs, maxNs = min(minNs, ns), max(maxNs, ns)
	}
	base := floorSec(minNs)
	p := j.zbuf[:0]
	for _, e := range ents {
		p = binary.AppendVarint(p, int64(e.day))
		p = binary.AppendUvarint(p, uint64(e.block))
		p = binary.AppendUvarint(p, uint64(e.idx))
		p = encodeEvent(p, e.ev, base)
	}
	h := frameHeader{Block: jEvents, Count: uint32(len(ents)), MinNs: minNs, MaxNs: maxNs}
	if j.compress {
		j.zbuf = p
		p = enc.EncodeAll(p, nil)
		h.NextBlock = jZstd
	} else {
		j.zbuf = p
	}
	j.buf = appendFrameMagic(j.buf[:0], journalMagic, h, p)
	return j.buf
}

func dropFrame(d dayKey) []byte {
	return appendFrameMagic(nil, journalMagic, frameHeader{Block: jDrop}, binary.AppendVarint(nil, int64(d)))
}

// replayBlock is an unsealed block rebuilt from the journal.
type replayBlock struct {
	evs      []event.Event
	firstSeg uint64
	skipped  int // events that could not be placed (a gap before them)
}

// replayState is what a journal scan found: per day, per block, the events
// not known to be sealed. Days are dropped from it at drop records.
type replayState map[dayKey]map[uint32]*replayBlock

// readJournal scans every segment in order into a replayState. A bad frame
// ends its segment: in the last one that is the torn tail of a crash and
// is cut off; in an older one (closed and fsynced, so damaged on disk) the
// rest of that segment is lost, which is logged.
func readJournal(dir string, segs []jSeg, dec *zstd.Decoder, log *slog.Logger) (replayState, error) {
	st := replayState{}
	for i, sg := range segs {
		path := filepath.Join(dir, segName(sg.seq))
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("open journal segment: %w", err)
		}
		good, err := st.readSegment(f, sg.size, sg.seq, dec, log)
		if err != nil {
			if i == len(segs)-1 {
				log.Warn("journal has a torn or corrupt tail, truncating", "path", path, "size", sg.size, "valid", good, "reason", err)
				if terr := f.Truncate(good); terr != nil {
					f.Close()
					return nil, fmt.Errorf("truncate journal: %w", terr)
				}
				if serr := f.Sync(); serr != nil {
					f.Close()
					return nil, fmt.Errorf("sync journal: %w", serr)
				}
			} else {
				log.Error("journal segment damaged, the rest of it is lost", "path", path, "size", sg.size, "valid", good, "reason", err)
			}
		}
		f.Close()
	}
	return st, nil
}

// readSegment adds the frames of one segment to the state until the first
// bad one; it returns the end of the last good frame.
func (st replayState) readSegment(r io.ReaderAt, size int64, seq uint64, dec *zstd.Decoder, log *slog.Logger) (int64, error) {
	var good int64
	var ferr error
	err := scanFrames(r, journalMagic, 0, size, true, func(off int64, h frameHeader, payload []byte) bool {
		if ferr = st.apply(h, payload, seq, dec, log); ferr != nil {
			ferr = fmt.Errorf("journal %s frame at %d: %w", segName(seq), off, ferr)
			return false
		}
		good = off + frameOverhead + int64(h.payloadLen)
		return true
	})
	if err == nil {
		err = ferr
	}
	return good, err
}

// apply adds one journal frame to the state.
func (st replayState) apply(h frameHeader, payload []byte, seq uint64, dec *zstd.Decoder, log *slog.Logger) error {
	var s string
	if h.NextBlock&jZstd != 0 {
		b, err := dec.DecodeAll(payload, nil)
		if err != nil {
			return fmt.Errorf("decompress: %w", err)
		}
		s = string(b)
	} else {
		// Replayed events keep substrings of it: their own copy.
		s = string(payload)
	}
	d := decoder{s: s}
	switch h.Block {
	case jDrop:
		day := dayKey(d.varint())
		if d.err != nil || d.pos != len(s) {
			return errCorrupt
		}
		delete(st, day)
		return nil
	case jEvents:
	default:
		return fmt.Errorf("unknown record type %d", h.Block)
	}
	base := floorSec(h.MinNs)
	if int(h.Count) > len(s) {
		return errCorrupt
	}
	for range h.Count {
		day := dayKey(d.varint())
		block := d.uvarint()
		idx := d.uvarint()
		var ev event.Event
		if err := d.event(&ev, base); err != nil || block > 1<<32-1 || idx > 1<<31 {
			return errCorrupt
		}
		bs := st[day]
		if bs == nil {
			bs = map[uint32]*replayBlock{}
			st[day] = bs
		}
		b := bs[uint32(block)]
		if b == nil {
			b = &replayBlock{firstSeg: seq}
			bs[uint32(block)] = b
		}
		switch {
		case int(idx) == len(b.evs):
			ev.ID = eventID(idPrefix(day, uint32(block)), int(idx))
			b.evs = append(b.evs, ev)
		case int(idx) < len(b.evs):
			// Already there (cannot happen with one writer; harmless).
		default:
			// A gap (a damaged older segment): the event cannot keep its
			// ID, so it is not replayed.
			b.skipped++
		}
	}
	if d.pos != len(s) {
		return errCorrupt
	}
	return nil
}

// openJournal replays the journal into the open shards and starts a new
// segment. Called by Open after the shards are open, before any Append.
func (s *Store) openJournal() error {
	dir := filepath.Join(s.cfg.Dir, journalDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create journal dir: %w", err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		return err
	}
	st, err := readJournal(dir, segs, s.dec, s.log)
	if err != nil {
		return err
	}
	// Sizes after a possible tail cut.
	if segs, err = listSegments(dir); err != nil {
		return err
	}
	j := &journal{
		dir:       dir,
		log:       s.log,
		syncEvery: s.cfg.SyncInterval,
		segBytes:  s.cfg.JournalSegmentBytes,
		segAge:    s.cfg.JournalSegmentAge,
		compress:  s.cfg.JournalCompress,
		old:       segs,
	}
	if len(segs) > 0 {
		j.curSeq = segs[len(segs)-1].seq
	}
	if err := j.start(s.now()); err != nil {
		return err
	}
	s.j = j
	if err := s.restore(st); err != nil {
		return err
	}
	// Segments that held only sealed events go now.
	return s.reclaim()
}

// restore puts the replayed blocks that are not in raw back into memory
// as open blocks, with their original numbers (and so IDs).
func (s *Store) restore(st replayState) error {
	days := make([]dayKey, 0, len(st))
	for d := range st {
		days = append(days, d)
	}
	slices.Sort(days)
	now := s.now()
	var replayed, blocks int
	var queued, toSeal []unsealedRef
	for _, d := range days {
		bs := st[d]
		if len(bs) == 0 {
			continue
		}
		sh, err := s.shardFor(d)
		if err != nil {
			return err
		}
		sealed, err := sh.raw.blocks()
		if err != nil {
			return fmt.Errorf("replay %s: %w", d.dirName(), err)
		}
		nums := make([]uint32, 0, len(bs))
		for n, b := range bs {
			if b.skipped > 0 {
				s.log.Error("journal replay: events after a gap not restored", "day", d.dirName(), "block", n, "events", b.skipped)
			}
			if !sealed[n] && len(b.evs) > 0 {
				nums = append(nums, n)
			}
		}
		if len(nums) == 0 {
			continue
		}
		slices.Sort(nums)
		// The sequence continues after every restored block, before any
		// of them is sealed (frames carry the high-water mark).
		sh.nextBlock = max(sh.nextBlock, nums[len(nums)-1]+1)
		for _, n := range nums {
			rb := bs[n]
			b := &memBlock{block: n, prefix: idPrefix(d, n), stream: streamOf(&rb.evs[0]), opened: now, firstSeg: rb.firstSeg, evs: rb.evs}
			b.minNs, b.maxNs = rb.evs[0].Time.UnixNano(), rb.evs[0].Time.UnixNano()
			for i := range rb.evs {
				ns := rb.evs[i].Time.UnixNano()
				b.minNs, b.maxNs = min(b.minNs, ns), max(b.maxNs, ns)
			}
			sh.mu.Lock()
			sh.mem = append(sh.mem, b)
			sh.mu.Unlock()
			replayed += len(b.evs)
			blocks++
			// One open block per stream (the newest); any other, and a
			// full one, is sealed now.
			if prev := sh.open[b.stream]; prev != nil {
				toSeal = append(toSeal, unsealedRef{sh, prev})
			}
			sh.open[b.stream] = b
			s.openEvents += len(b.evs)
			queued = append(queued, unsealedRef{sh, b})
			if len(b.evs) >= s.cfg.BlockSize {
				toSeal = append(toSeal, unsealedRef{sh, b})
			}
		}
	}
	// The queue is ordered by first segment (reclaim relies on it), and
	// filled before sealing (seal keeps its count).
	slices.SortStableFunc(queued, func(a, b unsealedRef) int { return cmp.Compare(a.b.firstSeg, b.b.firstSeg) })
	for _, r := range queued {
		s.unsealed.push(r.sh, r.b)
	}
	for _, r := range toSeal {
		if err := s.seal(r.sh, r.b, now); err != nil {
			return fmt.Errorf("replay %s: %w", r.sh.day.dirName(), err)
		}
	}
	if replayed > 0 {
		s.log.Info("replayed unsealed events from the journal", "events", replayed, "blocks", blocks)
	}
	return nil
}
