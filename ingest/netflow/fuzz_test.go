package netflow

import (
	"errors"
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary datagrams to the decoder entry point. The
// corpus in testdata/fuzz/FuzzDecode holds packets captured from softflowd
// (v5, v9, IPFIX). Each input is decoded twice by the same decoder, so
// templates from the first pass drive the data sets of the second.
func FuzzDecode(f *testing.F) {
	p := &packet{version: 9, domain: 1, export: recvTime, uptime: 1000}
	p.template(300, v4Template...)
	p.set(300, v4Record("10.0.0.1", "10.0.0.2", 1, 2, 6, 10, 1, 0, 0))
	f.Add(p.bytes())
	p = &packet{version: 10, domain: 1, export: recvTime}
	p.optionsTemplate(257, field{305, 4}, field{160, 8})
	p.set(257, make([]byte, 16))
	f.Add(p.bytes())
	f.Add(v5Packet(2, 10))
	p = &packet{version: 9, domain: 1, export: recvTime, uptime: 1000}
	p.template(256, field{8, 0}, field{12, 0})
	p.set(256, make([]byte, 32))
	f.Add(p.bytes()) // zero-length template: must not spin
	const maxTemplates = 8
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(time.Hour, maxTemplates, 2)
		for range 2 {
			flows, _, err := d.Decode(data, exporterA, recvTime, nil)
			var de *DecodeError
			if errors.As(err, &de) && de.Reason == ReasonPanic {
				t.Fatalf("decoder panicked: %v", err)
			}
			for _, fl := range flows {
				if !fl.Src.IsValid() || !fl.Dst.IsValid() || fl.SamplingRate == 0 {
					t.Fatalf("bad flow %+v", fl)
				}
				ev := Normalize(nil, &fl, recvTime)
				if ev.End.Before(ev.Time) || ev.Time.Sub(recvTime).Abs() > maxClockSkew {
					t.Fatalf("normalized times %v..%v", ev.Time, ev.End)
				}
			}
		}
		if _, n := d.Templates(); n > maxTemplates {
			t.Fatalf("%d templates held, bound %d", n, maxTemplates)
		}
	})
}
