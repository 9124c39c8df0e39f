package index

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/segwatch/segwatch/ingest/event"
)

// crashCfg is the store configuration of the crash tests: small blocks and
// batches so that a crash finds every state at once (blocks sealed and
// committed, sealed and not committed, open), and a long FlushAge so open
// blocks exist only in memory and the journal.
var crashCfg = Config{BlockSize: 16, BatchDocs: 8, FlushAge: 10 * time.Hour}

// crashChild runs a store in a child process (this test binary, in
// TestCrashHelper) that appends events [from, to) of genEvents(n, seed),
// writes their IDs to DIR/ids-<from>.json and then kills itself with
// SIGKILL: no Close, no flush, as in a real crash.
func crashChild(t *testing.T, dir string, n, from, to int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), "SEGWATCH_CRASH_DIR="+dir, fmt.Sprintf("SEGWATCH_CRASH_RANGE=%d,%d,%d", n, from, to))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("crash helper did not die by SIGKILL: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("ids-%d.json", from)))
	if err != nil {
		t.Fatalf("crash helper wrote no IDs: %v\n%s", err, out)
	}
	var ids []string
	if err := json.Unmarshal(b, &ids); err != nil {
		t.Fatal(err)
	}
	if len(ids) != to-from {
		t.Fatalf("helper returned %d IDs, want %d", len(ids), to-from)
	}
	return ids
}

// TestCrashHelper is crashChild's child process; it does nothing in a
// normal test run.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv("SEGWATCH_CRASH_DIR")
	if dir == "" {
		t.Skip("only run by the crash tests")
	}
	var n, from, to int
	if _, err := fmt.Sscanf(os.Getenv("SEGWATCH_CRASH_RANGE"), "%d,%d,%d", &n, &from, &to); err != nil {
		t.Fatal(err)
	}
	all := genEvents(t, n, 21)
	s := openTestStore(t, filepath.Join(dir, "index"), newClock(testNow), crashCfg)
	appendAll(t, s, all[from:to], 37)
	b, _ := json.Marshal(ids(all[from:to]))
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("ids-%d.json", from)), b, 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// checkAll checks that every event of want is searchable with its ID and
// that Get returns it.
func checkAll(t *testing.T, s *Store, want []event.Event) {
	t.Helper()
	for _, q := range []string{"", "app:sshd", "kind:flow"} {
		checkSearch(t, s, want, Request{Query: q, From: testNow.Add(-72 * time.Hour), To: testNow.Add(time.Second), Limit: 5000})
	}
	for i := 0; i < len(want); i += 7 {
		got, err := s.Get(context.Background(), want[i].ID)
		if err != nil || got.Message != want[i].Message || !got.Time.Equal(want[i].Time) || got.ID != want[i].ID {
			t.Fatalf("get %s: %v %+v", want[i].ID, err, got)
		}
	}
}

// A store killed with SIGKILL loses nothing it acknowledged: sealed frames
// are in raw (their documents indexed again if needed), unsealed events
// come back from the journal with their IDs; a second crash right after
// replay changes nothing; new events never get an ID already handed out.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	const n = 1500
	all := genEvents(t, n, 21)
	got := crashChild(t, dir, n, 0, 1000)
	for i, id := range got {
		all[i].ID = id
	}
	segs, err := listSegments(filepath.Join(dir, "index", journalDir))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no journal after the crash: %v", err)
	}
	// Replay in a second process that crashes again at once, after
	// appending more: replay is repeatable and IDs continue.
	got2 := crashChild(t, dir, n, 1000, 1200)
	for i, id := range got2 {
		all[1000+i].ID = id
	}
	c := newClock(testNow)
	s := openTestStore(t, filepath.Join(dir, "index"), c, crashCfg)
	checkAll(t, s, all[:1200])
	var open int
	for _, sh := range s.shards {
		for _, b := range sh.mem {
			if !b.sealed {
				open += len(b.evs)
			}
		}
	}
	if open == 0 {
		t.Fatal("no unsealed events after replay: the test does not exercise the journal")
	}
	appendAll(t, s, all[1200:], 50)
	seen := map[string]bool{}
	for _, ev := range all {
		if ev.ID == "" || seen[ev.ID] {
			t.Fatalf("ID %q missing or reused", ev.ID)
		}
		seen[ev.ID] = true
	}
	checkAll(t, s, all)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A clean close leaves nothing to replay.
	segs, err = listSegments(filepath.Join(dir, "index", journalDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, sg := range segs {
		if sg.size != 0 {
			t.Fatalf("journal segment %x has %d bytes after Close", sg.seq, sg.size)
		}
	}
	s = openTestStore(t, filepath.Join(dir, "index"), c, crashCfg)
	defer s.Close()
	checkAll(t, s, all)
}

// journalFrames returns the end offsets of the frames of a segment.
func journalFrames(t *testing.T, path string) []int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	var ends []int64
	if err := scanFrames(f, journalMagic, 0, st.Size(), true, func(off int64, h frameHeader, _ []byte) bool {
		ends = append(ends, off+frameOverhead+int64(h.payloadLen))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return ends
}

// A torn last journal frame is cut on open; the frames before it are
// replayed, appends continue, and a frame's events come back together or
// not at all.
func TestJournalTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func(t *testing.T, path string, ends []int64)
	}{
		{"half frame", func(t *testing.T, path string, ends []int64) {
			last := ends[len(ends)-2]
			if err := os.Truncate(path, last+(ends[len(ends)-1]-last)/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"flipped byte", func(t *testing.T, path string, ends []int64) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			defer f.Close()
			f.WriteAt([]byte{0x55}, ends[len(ends)-1]-9)
		}},
		{"garbage after", func(t *testing.T, path string, ends []int64) {
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			defer f.Close()
			f.Write([]byte("SWJ\x01 torn"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := newClock(testNow)
			cfg := Config{FlushAge: 10 * time.Hour}
			all := genEvents(t, 300, 22)
			// One day, so no block is sealed by a stream moving to the
			// next day: raw and Bleve stay untouched while copying.
			for i := range all {
				all[i].Time = testNow.Add(-time.Duration(len(all)-i) * time.Second)
			}
			s := openTestStore(t, dir, c, cfg)
			appendAll(t, s, all[:200], 50)
			appendAll(t, s, all[200:], 100) // the frame that gets torn
			// Simulate the crash on a copy: the writer is idle and
			// nothing was sealed, so raw and Bleve are not changing.
			crash := t.TempDir()
			if err := os.CopyFS(crash, os.DirFS(dir)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			segs, _ := listSegments(filepath.Join(crash, journalDir))
			path := filepath.Join(crash, journalDir, segName(segs[len(segs)-1].seq))
			ends := journalFrames(t, path)
			if len(ends) != 5 {
				t.Fatalf("%d journal frames, want 5", len(ends))
			}
			tc.tear(t, path, ends)
			s = openTestStore(t, crash, c, cfg)
			defer s.Close()
			want := all[:200]
			if tc.name == "garbage after" {
				want = all
			}
			checkAll(t, s, want)
			if st, _ := os.Stat(path); tc.name != "garbage after" && st.Size() != ends[len(ends)-2] {
				t.Fatalf("torn segment is %d bytes, want %d", st.Size(), ends[len(ends)-2])
			}
			// Appends continue after the cut.
			more := genEvents(t, 100, 23)
			for i := range more {
				more[i].Time = testNow.Add(-time.Duration(i) * time.Millisecond)
			}
			appendAll(t, s, more, 30)
			checkAll(t, s, append(append([]event.Event(nil), want...), more...))
		})
	}
}

// A dropped day's journal content does not come back after a crash, and a
// day that gets events again after its drop keeps those.
func TestJournalDropDay(t *testing.T) {
	dir := t.TempDir()
	c := newClock(testNow)
	cfg := Config{FlushAge: 10 * time.Hour}
	s := openTestStore(t, dir, c, cfg)
	all := genEvents(t, 600, 24)
	appendAll(t, s, all, 100)
	drop := dayOf(testNow.Add(-48 * time.Hour))
	if err := s.DropDay(drop.time()); err != nil {
		t.Fatal(err)
	}
	crash := t.TempDir()
	if err := os.CopyFS(crash, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	var rest []event.Event
	for _, ev := range all {
		if dayOf(ev.Time) != drop {
			rest = append(rest, ev)
		}
	}
	// The day comes back with new events only.
	again := []event.Event{{Time: drop.time().Add(time.Hour), Kind: event.KindLog, SourceIP: "10.20.0.9", Host: "cam-x", Message: "after the drop"}}
	appendAll(t, s, again, 1)
	crash2 := t.TempDir()
	if err := os.CopyFS(crash2, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openTestStore(t, crash, c, cfg)
	for _, d := range s.Days() {
		if dayOf(d) == drop {
			t.Fatalf("dropped day %s resurrected", drop.dirName())
		}
	}
	checkAll(t, s, rest)
	s.Close()

	s = openTestStore(t, crash2, c, cfg)
	defer s.Close()
	checkAll(t, s, append(rest, again...))
}

// Journal segments are deleted once every block holding their events is
// sealed, and the journal stays bounded by JournalMaxBytes.
func TestJournalReclaim(t *testing.T) {
	dir := t.TempDir()
	c := newClock(testNow.Add(-2 * time.Hour))
	cfg := Config{FlushAge: 30 * time.Minute, JournalSegmentAge: time.Minute}
	s := openTestStore(t, dir, c, cfg)
	defer s.Close()
	g, err := NewGenerator(GenConfig{Devices: 50, Events: 4000, Start: testNow.Add(-2 * time.Hour), End: testNow, Seed: 25})
	if err != nil {
		t.Fatal(err)
	}
	var all []event.Event
	maxSegs := 0
	for !g.Done() {
		var ev event.Event
		g.Next(&ev)
		c.set(ev.Time)
		evs := []event.Event{ev}
		appendAll(t, s, evs, 1)
		all = append(all, evs[0])
		segs, err := listSegments(filepath.Join(dir, journalDir))
		if err != nil {
			t.Fatal(err)
		}
		maxSegs = max(maxSegs, len(segs))
	}
	// FlushAge 30 min, a segment a minute: about 30 segments are needed,
	// never the whole 2 hours (120).
	if maxSegs > 45 || maxSegs < 20 {
		t.Fatalf("up to %d journal segments, want about 31", maxSegs)
	}
	checkAll(t, s, all)

	// Now a tight cap: the oldest blocks are sealed to honor it.
	s.cfg.JournalMaxBytes = 64 << 10
	for i := 0; i < 300; i++ {
		ev := event.Event{Time: c.now(), Kind: event.KindLog, SourceIP: "10.1.0." + strconv.Itoa(i%200), Host: "h", Message: string(bytes.Repeat([]byte("x"), 500))}
		evs := []event.Event{ev}
		appendAll(t, s, evs, 1)
		all = append(all, evs[0])
		c.add(5 * time.Second)
	}
	c.add(time.Minute) // a rotation, so the cap is checked
	if err := s.Tick(c.now()); err != nil {
		t.Fatal(err)
	}
	if n := s.j.size(); n > 64<<10 && len(s.j.old) > 0 {
		t.Fatalf("journal %d bytes in %d closed segments, cap 64 KiB", n, len(s.j.old))
	}
	checkAll(t, s, all)
}

// The open-events cap seals the oldest blocks first.
func TestMaxOpenEvents(t *testing.T) {
	c := newClock(testNow)
	s := openTestStore(t, t.TempDir(), c, Config{FlushAge: 10 * time.Hour, MaxOpenEvents: 100})
	defer s.Close()
	all := genEvents(t, 1000, 26)
	for i := 0; i < len(all); i += 10 {
		appendAll(t, s, all[i:i+10], 10)
		c.add(time.Second)
		if s.openEvents > 100 {
			t.Fatalf("%d events open, cap 100", s.openEvents)
		}
	}
	checkAll(t, s, all)
}

// Logs are grouped by device (or host) within a source address, so a relay
// forwarding many devices does not mix them into one block.
func TestStreamKeyByDevice(t *testing.T) {
	c := newClock(testNow)
	s := openTestStore(t, t.TempDir(), c, Config{})
	defer s.Close()
	evs := []event.Event{
		{Time: testNow.Add(-3 * time.Second), Kind: event.KindLog, SourceIP: "127.0.0.1", Device: "cam-1", Host: "cam-1", Message: "a"},
		{Time: testNow.Add(-2 * time.Second), Kind: event.KindLog, SourceIP: "127.0.0.1", Device: "cam-2", Host: "cam-2", Message: "b"},
		{Time: testNow.Add(-1 * time.Second), Kind: event.KindLog, SourceIP: "127.0.0.1", Host: "unknown-9", Message: "c"},
		{Time: testNow, Kind: event.KindLog, SourceIP: "127.0.0.1", Device: "cam-1", Host: "cam-1", Message: "d"},
	}
	appendAll(t, s, evs, 4)
	blockOf := func(id string) uint32 { _, b, _, _ := parseEventID(id); return b }
	if blockOf(evs[0].ID) != blockOf(evs[3].ID) || blockOf(evs[0].ID) == blockOf(evs[1].ID) || blockOf(evs[2].ID) == blockOf(evs[1].ID) {
		t.Fatalf("blocks %v", ids(evs))
	}
}

// FuzzJournalReplay feeds arbitrary bytes as a journal segment: replay
// must not panic, and must keep exactly the frames before the first bad
// one.
func FuzzJournalReplay(f *testing.F) {
	enc, _ := zstd.NewWriter(nil)
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	evs := genEvents(f, 5, 27)
	j := &journal{}
	var seed []byte
	seed = append(seed, j.eventsFrame(enc, []jEntry{{day: dayOf(evs[0].Time), block: 3, idx: 0, ev: &evs[0]}, {day: dayOf(evs[1].Time), block: 3, idx: 1, ev: &evs[1]}})...)
	seed = append(seed, dropFrame(dayOf(evs[0].Time))...)
	j.compress = true
	seed = append(seed, j.eventsFrame(enc, []jEntry{{day: dayOf(evs[2].Time), block: 0, idx: 0, ev: &evs[2]}})...)
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Add([]byte("SWJ\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The payload decoder alone (the CRC keeps mutations from reaching
		// it through readSegment).
		if len(data) > 0 {
			h := frameHeader{Block: uint32(data[0] % 3), NextBlock: uint32(data[0] >> 7), Count: uint32(len(data) % 7)}
			_ = replayState{}.apply(h, data[1:], 1, dec, slog.New(slog.DiscardHandler))
		}
		st := replayState{}
		good, err := st.readSegment(bytes.NewReader(data), int64(len(data)), 1, dec, slog.New(slog.DiscardHandler))
		if good > int64(len(data)) || (err == nil && good != int64(len(data))) {
			t.Fatalf("good %d of %d, err %v", good, len(data), err)
		}
		for d, bs := range st {
			for n, b := range bs {
				for i, ev := range b.evs {
					if ev.ID != eventID(idPrefix(d, n), i) {
						t.Fatalf("replayed ID %q at %d/%d/%d", ev.ID, d, n, i)
					}
				}
			}
		}
	})
}

// A power loss can take the journal's unsynced tail (here: all of it).
// The events in it are lost, but their IDs are never handed out again:
// block numbers are reserved durably before use.
func TestIDsNotReusedAfterJournalLoss(t *testing.T) {
	dir := t.TempDir()
	c := newClock(testNow)
	cfg := Config{FlushAge: 10 * time.Hour}
	all := genEvents(t, 400, 28)
	for i := range all {
		all[i].Time = testNow.Add(-time.Duration(len(all)-i) * time.Second)
	}
	s := openTestStore(t, dir, c, cfg)
	appendAll(t, s, all[:200], 50)
	crash := t.TempDir()
	if err := os.CopyFS(crash, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.RemoveAll(filepath.Join(crash, journalDir)); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, crash, c, cfg)
	defer s.Close()
	lost := map[string]bool{}
	for _, ev := range all[:200] {
		lost[ev.ID] = true
	}
	appendAll(t, s, all[200:], 50)
	for _, ev := range all[200:] {
		if lost[ev.ID] {
			t.Fatalf("ID %s handed out again", ev.ID)
		}
	}
	checkAll(t, s, all[200:])
	// A clean close and open continue without a gap.
	next := s.shards[dayOf(testNow)].nextBlock
	s.Close()
	s2 := openTestStore(t, crash, c, cfg)
	defer s2.Close()
	if got := s2.shards[dayOf(testNow)].nextBlock; got != next {
		t.Fatalf("next block %d after a clean restart, want %d", got, next)
	}
}
