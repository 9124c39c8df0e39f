package netflow

import (
	"time"

	"github.com/segwatch/segwatch/ingest/event"
	"github.com/segwatch/segwatch/ingest/inventory"
)

// maxClockSkew is how far a flow's start may be from its receive time
// before the exporter's clock is taken to be wrong (unset RTC, uptime
// wrap, garbage): such a flow is placed at its receive time, so that it
// lands in the index day and traffic minute where an analyst looks for it.
const maxClockSkew = 24 * time.Hour

// Normalize turns a decoded flow into a kind=flow event (SPEC §4) received
// at received: time is the flow start and end its end (both the receive
// time when the exporter's clock is off by more than a day), source_ip the
// exporter, flows 1, and the segments and devices of both ends from inv.
// With a nil inv there are no devices or configured segments, but public
// addresses are still "external".
func Normalize(inv *inventory.Inventory, f *Flow, received time.Time) event.Event {
	start, end := f.Start, f.End
	if start.IsZero() || start.Sub(received).Abs() > maxClockSkew {
		start, end = received, received
	}
	if end.Before(start) || end.Sub(start) > maxClockSkew {
		end = start
	}
	ev := event.Event{
		Time:        start,
		End:         end,
		Received:    received,
		Kind:        event.KindFlow,
		SourceIP:    f.Exporter.String(),
		SrcIP:       f.Src.String(),
		DstIP:       f.Dst.String(),
		SrcPort:     int(f.SrcPort),
		DstPort:     int(f.DstPort),
		Proto:       event.ProtoName(f.Proto),
		Bytes:       f.Bytes,
		Packets:     f.Packets,
		FlowVersion: f.Version,
		Flows:       1,
		Facility:    event.NoSeverity,
		Severity:    event.NoSeverity,
	}
	if inv != nil {
		inv.EnrichFlow(&ev, f.Src, f.Dst)
	} else {
		// Without an inventory the public/private rule still holds.
		empty, _ := inventory.New(nil, nil)
		empty.EnrichFlow(&ev, f.Src, f.Dst)
	}
	return ev
}
