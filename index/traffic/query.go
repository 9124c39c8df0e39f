package traffic

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Cell is the traffic of one segment pair over a query's range.
type Cell struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Bytes   uint64 `json:"bytes"`
	Packets uint64 `json:"packets"`
	Flows   uint64 `json:"flows"`
}

// Point is one step of a series; it renders as [time, bytes] (SPEC §5).
type Point struct {
	Time  time.Time
	Bytes uint64
}

// MarshalJSON renders [RFC 3339 time, bytes].
func (p Point) MarshalJSON() ([]byte, error) {
	return json.Marshal([2]any{p.Time.UTC().Format(time.RFC3339), p.Bytes})
}

// UnmarshalJSON reads the MarshalJSON form.
func (p *Point) UnmarshalJSON(b []byte) error {
	var raw [2]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if err := json.Unmarshal(raw[0], &p.Time); err != nil {
		return err
	}
	return json.Unmarshal(raw[1], &p.Bytes)
}

// Series is the bytes a segment sent plus the bytes it received per step;
// traffic inside the segment counts once.
type Series struct {
	Segment string  `json:"segment"`
	Points  []Point `json:"points"`
}

// Result answers GET /api/v1/traffic (SPEC §5). Segments are the ones
// with traffic in the range, sorted; the matrix has one cell per pair with
// traffic, sorted by from then to; each segment has a series with a point
// for every step (zero when idle), the point's time being the step's start.
type Result struct {
	From     time.Time     `json:"-"`
	To       time.Time     `json:"-"`
	Step     time.Duration `json:"-"`
	Segments []string      `json:"segments"`
	Matrix   []Cell        `json:"matrix"`
	Series   []Series      `json:"series"`
}

// DefaultStep is the step Query uses when none is given: 1m up to 6 h,
// 5m up to 2 days, 1h up to 31 days, 1 day beyond.
func DefaultStep(span time.Duration) time.Duration {
	switch {
	case span <= 6*time.Hour:
		return time.Minute
	case span <= 48*time.Hour:
		return 5 * time.Minute
	case span <= 31*dayLen:
		return time.Hour
	default:
		return dayLen
	}
}

// ErrBadRange reports a range or step Query cannot answer.
var ErrBadRange = errors.New("bad traffic range")

// Query sums traffic in [from, to) (both rounded to the minute: from down,
// to up) per pair and per segment and step. A zero step picks DefaultStep.
// Steps are whole minutes, aligned to the UTC epoch (a 1h step starts on
// the hour); the first and last steps are clipped to the range. Whole hours
// are read from the hourly cells and only the partial hours at the edges
// from the minute cells, so a 90-day query touches ~2,200 cells per pair.
func (s *Store) Query(from, to time.Time, step time.Duration) (Result, error) {
	from = from.UTC().Truncate(time.Minute)
	if t := to.UTC().Truncate(time.Minute); t.Before(to) {
		to = t.Add(time.Minute)
	} else {
		to = t
	}
	if !to.After(from) {
		return Result{}, fmt.Errorf("%w: to is not after from", ErrBadRange)
	}
	if step == 0 {
		step = DefaultStep(to.Sub(from))
	}
	if step < time.Minute || step%time.Minute != 0 {
		return Result{}, fmt.Errorf("%w: step must be whole minutes", ErrBadRange)
	}
	first := alignDown(from, step)
	if n := to.Sub(first) / step; n >= MaxPoints {
		return Result{}, fmt.Errorf("%w: %d steps, at most %d", ErrBadRange, n, MaxPoints)
	}
	res := Result{From: from, To: to, Step: step}

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.opened || s.closed {
		return Result{}, errNotOpen
	}
	q := query{s: s, mins: make(map[int64]map[pair]*minuteCells)}
	// The pairs with any traffic in the days touched.
	pairs := make(map[pair]bool)
	for n := dayNum(from); n <= dayNum(to.Add(-time.Nanosecond)); n++ {
		d, err := s.getDay(n, false, false)
		if err != nil {
			return Result{}, fmt.Errorf("traffic query: %w", err)
		}
		if d == nil {
			continue
		}
		for p := range d.hours {
			pairs[p] = true
		}
	}
	var nsteps int
	for t := first; t.Before(to); t = t.Add(step) {
		nsteps++
	}
	bySeg := make(map[uint16][]uint64)
	for p := range pairs {
		var total Counters
		var per []uint64
		for i, t := 0, first; i < nsteps; i, t = i+1, t.Add(step) {
			a, b := t, t.Add(step)
			if a.Before(from) {
				a = from
			}
			if b.After(to) {
				b = to
			}
			c, err := q.sum(p, a, b)
			if err != nil {
				return Result{}, fmt.Errorf("traffic query: %w", err)
			}
			if c.zero() {
				continue
			}
			if per == nil {
				per = make([]uint64, nsteps)
			}
			per[i] = c.Bytes
			total.add(&c)
		}
		if total.zero() {
			continue
		}
		res.Matrix = append(res.Matrix, Cell{From: s.names[p.from()], To: s.names[p.to()], Bytes: total.Bytes, Packets: total.Packets, Flows: total.Flows})
		for _, seg := range []uint16{p.from(), p.to()} {
			acc := bySeg[seg]
			if acc == nil {
				acc = make([]uint64, nsteps)
				bySeg[seg] = acc
			}
			for i, v := range per {
				acc[i] += v
			}
			if p.from() == p.to() {
				break // inside one segment: count once
			}
		}
	}
	sort.Slice(res.Matrix, func(i, j int) bool {
		a, b := res.Matrix[i], res.Matrix[j]
		return a.From < b.From || a.From == b.From && a.To < b.To
	})
	res.Segments = make([]string, 0, len(bySeg))
	for id := range bySeg {
		res.Segments = append(res.Segments, s.names[id])
	}
	sort.Strings(res.Segments)
	res.Series = make([]Series, 0, len(res.Segments))
	for _, name := range res.Segments {
		acc := bySeg[s.ids[name]]
		pts := make([]Point, nsteps)
		for i := range pts {
			pts[i] = Point{Time: first.Add(time.Duration(i) * step), Bytes: acc[i]}
		}
		res.Series = append(res.Series, Series{Segment: name, Points: pts})
	}
	if res.Matrix == nil {
		res.Matrix = []Cell{}
	}
	return res, nil
}

// alignDown aligns t to a multiple of step since the Unix epoch.
func alignDown(t time.Time, step time.Duration) time.Time {
	u := t.UnixNano()
	return time.Unix(0, u-u%int64(step)).UTC()
}

// query caches the minute cells of older days read from disk for the
// length of one Query, without keeping them in the store.
type query struct {
	s    *Store
	mins map[int64]map[pair]*minuteCells
}

func (q *query) minutes(n int64) (map[pair]*minuteCells, error) {
	d := q.s.days[n]
	if d == nil {
		return nil, nil
	}
	if d.mins != nil {
		return d.mins, nil
	}
	if m, ok := q.mins[n]; ok {
		return m, nil
	}
	loaded, err := q.s.readDay(n, true)
	if err != nil {
		return nil, err
	}
	q.mins[n] = loaded.mins
	return loaded.mins, nil
}

// sum adds the cells of p in [a, b), both whole minutes.
func (q *query) sum(p pair, a, b time.Time) (Counters, error) {
	var c Counters
	for a.Before(b) {
		n := dayNum(a)
		d := q.s.days[n]
		dayEnd := dayStart(n + 1)
		if d == nil {
			a = dayEnd
			continue
		}
		sec := a.Unix() - n*86400
		if sec%3600 == 0 && !a.Add(time.Hour).After(b) {
			if h := d.hours[p]; h != nil {
				c.add(&h[sec/3600])
			}
			a = a.Add(time.Hour)
			continue
		}
		if d.hours[p] == nil {
			// Nothing this day: skip to the next hour (or b).
			next := a.Truncate(time.Hour).Add(time.Hour)
			if next.After(b) {
				next = b
			}
			a = next
			continue
		}
		mins, err := q.minutes(n)
		if err != nil {
			return c, err
		}
		if m := mins[p]; m != nil {
			c.add(&m[sec/60])
		}
		a = a.Add(time.Minute)
	}
	return c, nil
}
