package traffic

import (
	"fmt"
	"testing"
	"time"
)

func BenchmarkAdd(b *testing.B) {
	s := open(b, b.TempDir(), t0)
	segs := []string{"cameras", "servers", "office", "external", ""}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		at := t0.Add(time.Duration(i%86400) * time.Second)
		_ = s.Add(at, segs[i%5], segs[(i/5)%5], 1500, 3, 1)
	}
}

// BenchmarkQuery90Days queries 90 days of 10 segments (100 pairs) with
// traffic in every minute of the last two days and every hour before, from
// memory after a first load, with the default (1 day) step and unaligned
// edges.
func BenchmarkQuery90Days(b *testing.B) {
	s := open(b, b.TempDir(), t0)
	var segs []string
	for i := range 10 {
		segs = append(segs, fmt.Sprintf("seg%d", i))
	}
	start := t0.Add(-90 * 24 * time.Hour)
	for at := start; at.Before(t0); {
		for _, f := range segs {
			for _, g := range segs {
				_ = s.Add(at, f, g, 1000, 1, 1)
			}
		}
		if t0.Sub(at) > 48*time.Hour {
			at = at.Add(time.Hour)
		} else {
			at = at.Add(time.Minute)
		}
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	from, to := start.Add(7*time.Minute), t0.Add(-3*time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := s.Query(from, to, 0)
		if err != nil || len(r.Matrix) != 100 {
			b.Fatal(err, len(r.Matrix))
		}
	}
}
