// Package traffic keeps the segment-to-segment traffic rollup: bytes,
// packets and flows per (source segment, destination segment) per minute,
// persisted per UTC day, so that GET /api/v1/traffic answers any range up to
// the retention quickly without scanning the event index.
//
// Layout: DIR/YYYY-MM-DD.traffic (DIR is typically DATA/traffic), one compact file per UTC day
// (varint-encoded sparse hourly and minute cells, CRC-32 checked), written
// atomically (temp file, fsync, rename). In memory every touched day keeps
// its 24 hourly cells per pair; minute cells stay only for the most recent
// days (Options.MinuteDays) and are read back from the day file when a query
// needs minute resolution further back.
//
// Addresses outside every configured segment but private have no segment in
// the event schema (SPEC §4: empty); the rollup names them SegmentUnknown so
// that the matrix has no empty names. A configured segment called "unknown"
// would be merged with them.
package traffic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

var errNotOpen = errors.New("traffic store not open")

// SegmentUnknown stands for the empty segment (a private address outside
// every configured segment) in the rollup.
const SegmentUnknown = "unknown"

// Resolutions of the rollup.
const (
	minutesPerDay = 1440
	hoursPerDay   = 24
	dayLen        = 24 * time.Hour
	fileSuffix    = ".traffic"
	dayLayout     = "2006-01-02"
)

// MaxPoints bounds the points of one series in a Query, so that a long
// range with a fine step cannot make a huge answer.
const MaxPoints = 20000

// maxSegments bounds the distinct segment names (ids are 16-bit).
const maxSegments = 1 << 16

// Options tunes a Store; the zero value is usable.
type Options struct {
	Logger  *slog.Logger
	Metrics *metrics.Set
	Now     func() time.Time
	// MinuteDays is how many most recent UTC days keep minute cells in
	// memory (default 2: today and yesterday).
	MinuteDays int
	// FlushInterval is how often Run writes changed days (default 1m).
	FlushInterval time.Duration
}

// Counters are the sums of one cell.
type Counters struct {
	Bytes, Packets, Flows uint64
}

func (c *Counters) add(o *Counters) {
	c.Bytes += o.Bytes
	c.Packets += o.Packets
	c.Flows += o.Flows
}

func (c Counters) zero() bool { return c.Bytes == 0 && c.Packets == 0 && c.Flows == 0 }

// pair is a (from, to) segment pair as two 16-bit segment ids.
type pair uint32

func mkPair(from, to uint16) pair { return pair(uint32(from)<<16 | uint32(to)) }
func (p pair) from() uint16       { return uint16(p >> 16) }
func (p pair) to() uint16         { return uint16(p) }

type hourCells = [hoursPerDay]Counters
type minuteCells = [minutesPerDay]Counters

// day is one UTC day of the rollup.
type day struct {
	num   int64 // days since 1970-01-01
	hours map[pair]*hourCells
	// mins is nil when the minute cells are only on disk.
	mins  map[pair]*minuteCells
	dirty bool
}

// Store is the traffic rollup. Its methods are safe for concurrent use.
type Store struct {
	dir  string
	opt  Options
	log  *slog.Logger
	now  func() time.Time
	errs *metrics.Counter

	flushMu sync.Mutex // one Flush at a time; taken before mu

	mu     sync.Mutex
	names  []string
	ids    map[string]uint16
	days   map[int64]*day
	onDisk map[int64]bool // day files not loaded yet
	opened bool
	closed bool
}

// New builds a store for the day files in dir (typically DATA/traffic).
// It touches nothing on disk (the server binds its sockets before writing
// to the data dir); Open does. At most one Options is used; the zero
// value is usable.
func New(dir string, opts ...Options) *Store {
	var opt Options
	if len(opts) > 0 {
		opt = opts[0]
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Metrics == nil {
		opt.Metrics = metrics.NewSet()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.MinuteDays <= 0 {
		opt.MinuteDays = 2
	}
	if opt.FlushInterval <= 0 {
		opt.FlushInterval = time.Minute
	}
	return &Store{
		dir:    dir,
		opt:    opt,
		log:    opt.Logger,
		now:    opt.Now,
		errs:   opt.Metrics.GetOrCreateCounter(`segwatch_traffic_write_errors_total`),
		ids:    make(map[string]uint16),
		days:   make(map[int64]*day),
		onDisk: make(map[int64]bool),
	}
}

// Open creates the directory if needed, removes leftovers of an
// interrupted write or drop, and lists the day files (read lazily, when a
// query or a late flow needs them). Add and Query fail before Open.
func (s *Store) Open() error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("create traffic dir: %w", err)
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("list traffic dir: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".deleting") {
			if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
				return fmt.Errorf("remove leftover %s: %w", name, err)
			}
			continue
		}
		if n, ok := parseDayFile(name); ok {
			s.onDisk[n] = true
		}
	}
	s.opened = true
	s.opt.Metrics.GetOrCreateGauge(`segwatch_traffic_days`, func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(len(s.days) + len(s.onDisk))
	})
	return nil
}

func parseDayFile(name string) (int64, bool) {
	base, ok := strings.CutSuffix(name, fileSuffix)
	if !ok {
		return 0, false
	}
	t, err := time.Parse(dayLayout, base)
	if err != nil {
		return 0, false
	}
	return dayNum(t), true
}

func dayNum(t time.Time) int64 {
	u := t.Unix()
	if u < 0 {
		return (u - 86399) / 86400
	}
	return u / 86400
}

func dayStart(n int64) time.Time { return time.Unix(n*86400, 0).UTC() }

func (s *Store) path(n int64) string {
	return filepath.Join(s.dir, dayStart(n).Format(dayLayout)+fileSuffix)
}

// id interns a segment name; ok is false once maxSegments names exist.
func (s *Store) id(name string) (uint16, bool) {
	if name == "" {
		name = SegmentUnknown
	}
	if id, ok := s.ids[name]; ok {
		return id, true
	}
	if len(s.names) >= maxSegments {
		return 0, false
	}
	id := uint16(len(s.names))
	s.names = append(s.names, name)
	s.ids[name] = id
	return id, true
}

// getDay returns day n, loading it from disk if needed (its minute cells
// too when withMinutes), or nil when it does not exist and create is false.
func (s *Store) getDay(n int64, withMinutes, create bool) (*day, error) {
	d := s.days[n]
	if d == nil && s.onDisk[n] {
		loaded, err := s.readDay(n, withMinutes)
		if errors.Is(err, errCorrupt) {
			// Keep the damaged file for inspection and go on with an
			// empty day rather than failing every later write and query.
			s.log.Error("traffic day file damaged, set aside", "day", dayStart(n).Format(dayLayout), "err", err)
			s.errs.Inc()
			if rerr := os.Rename(s.path(n), s.path(n)+".corrupt"); rerr != nil {
				return nil, fmt.Errorf("set aside damaged traffic day: %w", rerr)
			}
			delete(s.onDisk, n)
			return s.getDay(n, withMinutes, create)
		}
		if err != nil {
			return nil, err
		}
		if !withMinutes {
			loaded.mins = nil
		}
		delete(s.onDisk, n)
		s.days[n] = loaded
		return loaded, nil
	}
	if d == nil {
		if !create {
			return nil, nil
		}
		d = &day{num: n, hours: make(map[pair]*hourCells), mins: make(map[pair]*minuteCells)}
		s.days[n] = d
		return d, nil
	}
	if withMinutes && d.mins == nil {
		loaded, err := s.readDay(n, true)
		if err != nil {
			return nil, err
		}
		d.mins = loaded.mins
	}
	return d, nil
}

// Add counts one flow (or aggregate) at t from segment from to segment to;
// an empty segment is SegmentUnknown.
func (s *Store) Add(t time.Time, from, to string, bytes, packets, flows uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.opened || s.closed {
		return errNotOpen
	}
	f, ok1 := s.id(from)
	g, ok2 := s.id(to)
	if !ok1 || !ok2 {
		return errors.New("too many segment names")
	}
	n := dayNum(t)
	d, err := s.getDay(n, true, true)
	if err != nil {
		return fmt.Errorf("load traffic day: %w", err)
	}
	p := mkPair(f, g)
	c := Counters{bytes, packets, flows}
	sec := t.Unix() - n*86400
	h := d.hours[p]
	if h == nil {
		h = new(hourCells)
		d.hours[p] = h
	}
	h[sec/3600].add(&c)
	m := d.mins[p]
	if m == nil {
		m = new(minuteCells)
		d.mins[p] = m
	}
	m[sec/60].add(&c)
	d.dirty = true
	return nil
}

// Run writes changed days every FlushInterval until ctx ends. Close
// writes the rest.
func (s *Store) Run(ctx context.Context) error {
	tk := time.NewTicker(s.opt.FlushInterval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
			if err := s.Flush(); err != nil {
				// Kept in memory and retried at the next tick.
				s.log.Error("traffic flush", "err", err)
			}
		}
	}
}

// Flush writes every changed day to its file and then lets minute cells of
// days older than MinuteDays go from memory.
func (s *Store) Flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	type job struct {
		n    int64
		data []byte
	}
	var jobs []job
	s.mu.Lock()
	for n, d := range s.days {
		if d.dirty {
			jobs = append(jobs, job{n, s.encodeDay(d)})
			d.dirty = false
		}
	}
	s.mu.Unlock()
	var errs []error
	var failed []int64
	for _, j := range jobs {
		if err := writeAtomic(s.path(j.n), j.data); err != nil {
			s.errs.Inc()
			errs = append(errs, err)
			failed = append(failed, j.n)
		}
	}
	s.mu.Lock()
	for _, n := range failed {
		if d := s.days[n]; d != nil {
			d.dirty = true
		}
	}
	keep := dayNum(s.now()) - int64(s.opt.MinuteDays) + 1
	for n, d := range s.days {
		if n < keep && !d.dirty {
			d.mins = nil
		}
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

// Close writes changed days; the store is unusable afterwards.
func (s *Store) Close() error {
	err := s.Flush()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return err
}

// DropBefore removes every day before the UTC day of t, from memory and
// disk (retention), and returns how many days it removed. A file is
// renamed before it is removed so that a crash leaves no half day.
func (s *Store) DropBefore(t time.Time) (int, error) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	cut := dayNum(t)
	s.mu.Lock()
	var drop []int64
	for n := range s.days {
		if n < cut {
			drop = append(drop, n)
		}
	}
	for n := range s.onDisk {
		if n < cut {
			drop = append(drop, n)
		}
	}
	for _, n := range drop {
		delete(s.days, n)
		delete(s.onDisk, n)
	}
	s.mu.Unlock()
	var errs []error
	for _, n := range drop {
		p := s.path(n)
		if err := os.Rename(p, p+".deleting"); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("drop traffic day: %w", err))
			}
			continue
		}
		if err := os.Remove(p + ".deleting"); err != nil {
			errs = append(errs, fmt.Errorf("drop traffic day: %w", err))
		}
	}
	return len(drop), errors.Join(errs...)
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write traffic day: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write traffic day: %w", err)
	}
	return nil
}

// Days returns the UTC days held, oldest first (for retention and tests).
func (s *Store) Days() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Time
	for n := range s.days {
		out = append(out, dayStart(n))
	}
	for n := range s.onDisk {
		out = append(out, dayStart(n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}
