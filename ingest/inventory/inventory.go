// Package inventory answers "which device, owner, category and segment is
// this address?" for normalization and the detectors. An Inventory is an
// immutable snapshot; a Holder swaps snapshots atomically when devices are
// changed through the API, so lookups on the ingest hot path take no lock.
package inventory

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

// Device statuses.
const (
	StatusActive         = "active"
	StatusDecommissioned = "decommissioned"
)

// Device is one inventoried device (SPEC §2 devices).
type Device struct {
	Name                string     `json:"name"`
	IP                  netip.Addr `json:"ip"`
	Category            string     `json:"category"`
	Owner               string     `json:"owner"`
	Vendor              string     `json:"vendor"`
	Location            string     `json:"location"`
	Purpose             string     `json:"purpose"`
	Status              string     `json:"status"`
	DecommissionedAt    time.Time  `json:"decommissioned_at"`
	Firmware            string     `json:"firmware"`
	FirmwareUpdated     time.Time  `json:"firmware_updated"`
	CriticalUpdateSince time.Time  `json:"critical_update_since"`
}

// Segment is a named set of address ranges (SPEC §2 segments).
type Segment struct {
	Name     string
	Kind     string // iot, office, server, ...
	Prefixes []netip.Prefix
}

type segPrefix struct {
	prefix netip.Prefix
	name   string
}

// Inventory is an immutable snapshot of segments and devices.
type Inventory struct {
	segments []Segment
	prefixes []segPrefix // longest prefix first, so the first match wins
	devices  map[netip.Addr]*Device
	byName   map[string]*Device
	byLower  map[string]*Device // lower-cased names, for syslog host headers
}

// New validates and indexes segments and devices. Overlapping segments and
// duplicate device names or addresses are errors.
func New(segments []Segment, devices []Device) (*Inventory, error) {
	inv := &Inventory{
		segments: segments,
		devices:  make(map[netip.Addr]*Device, len(devices)),
		byName:   make(map[string]*Device, len(devices)),
		byLower:  make(map[string]*Device, len(devices)),
	}
	for _, s := range segments {
		for _, p := range s.Prefixes {
			p = p.Masked()
			for _, o := range inv.prefixes {
				if o.prefix.Overlaps(p) {
					return nil, fmt.Errorf("segment %q: %s overlaps %s of segment %q", s.Name, p, o.prefix, o.name)
				}
			}
			inv.prefixes = append(inv.prefixes, segPrefix{prefix: p, name: s.Name})
		}
	}
	sort.SliceStable(inv.prefixes, func(i, j int) bool { return inv.prefixes[i].prefix.Bits() > inv.prefixes[j].prefix.Bits() })
	for i := range devices {
		d := devices[i]
		if d.Name == "" {
			return nil, fmt.Errorf("device %d: name is empty", i+1)
		}
		if _, dup := inv.byName[d.Name]; dup {
			return nil, fmt.Errorf("device %q: name used twice", d.Name)
		}
		if d.Status == "" {
			d.Status = StatusActive
		}
		if d.IP.IsValid() {
			d.IP = d.IP.Unmap()
			if o, dup := inv.devices[d.IP]; dup {
				return nil, fmt.Errorf("device %q: address %s already belongs to %q", d.Name, d.IP, o.Name)
			}
			inv.devices[d.IP] = &d
		}
		inv.byName[d.Name] = &d
		inv.byLower[strings.ToLower(d.Name)] = &d
	}
	return inv, nil
}

// Segments returns the configured segments in config order.
func (inv *Inventory) Segments() []Segment { return inv.segments }

// Devices returns every device sorted by name. The slice is new; the
// devices are copies.
func (inv *Inventory) Devices() []Device {
	out := make([]Device, 0, len(inv.byName))
	for _, d := range inv.byName {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Device returns the device at addr.
func (inv *Inventory) Device(addr netip.Addr) (Device, bool) {
	d, ok := inv.devices[addr.Unmap()]
	if !ok {
		return Device{}, false
	}
	return *d, true
}

// DeviceByName returns the named device.
func (inv *Inventory) DeviceByName(name string) (Device, bool) {
	d, ok := inv.byName[name]
	if !ok {
		return Device{}, false
	}
	return *d, true
}

// SegmentOf names the segment of addr: a configured segment, "external" for a
// public address, or "" for a private address outside every segment.
func (inv *Inventory) SegmentOf(addr netip.Addr) string {
	addr = addr.Unmap()
	for _, p := range inv.prefixes {
		if p.prefix.Contains(addr) {
			return p.name
		}
	}
	if !addr.IsValid() || addr.IsPrivate() || addr.IsLoopback() || addr.IsLinkLocalUnicast() ||
		addr.IsMulticast() || addr.IsUnspecified() || addr.IsLinkLocalMulticast() || isSharedOrReserved(addr) {
		return ""
	}
	return event.SegmentExternal
}

// isSharedOrReserved covers ranges that are not public but that netip does
// not classify: carrier-grade NAT, benchmarking, documentation is public for
// our purposes (vendors' examples use it) so it is not listed.
func isSharedOrReserved(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	switch {
	case b[0] == 100 && b[1]&0xc0 == 64: // 100.64.0.0/10 CGNAT
		return true
	case b[0] == 0, b[0] >= 240: // this network, reserved, broadcast
		return true
	}
	return false
}

// EnrichLog fills device, owner, category and segment of a log event. The
// device is matched by the sender's address first; when the sender is not an
// inventoried device (a relay such as rsyslog, or a NAT), the syslog header's
// host is tried as an address and then as a device name. The segment is the
// device's when one matched, else the sender's.
func (inv *Inventory) EnrichLog(ev *event.Event, src netip.Addr) {
	d, ok := inv.devices[src.Unmap()]
	if !ok && ev.Host != "" {
		if a, err := netip.ParseAddr(ev.Host); err == nil {
			d, ok = inv.devices[a.Unmap()]
		} else {
			d, ok = inv.byLower[strings.ToLower(ev.Host)]
		}
	}
	if !ok {
		ev.Segment = inv.SegmentOf(src)
		return
	}
	ev.Device, ev.Owner, ev.Category = d.Name, d.Owner, d.Category
	if d.IP.IsValid() {
		ev.Segment = inv.SegmentOf(d.IP)
	} else {
		ev.Segment = inv.SegmentOf(src)
	}
}

// EnrichFlow fills the segments and devices of both ends of a flow. The
// event's device/owner/category/segment describe the inventoried end: the
// source if it is a device, else the destination.
func (inv *Inventory) EnrichFlow(ev *event.Event, src, dst netip.Addr) {
	ev.SrcSegment = inv.SegmentOf(src)
	ev.DstSegment = inv.SegmentOf(dst)
	ev.Segment = ev.SrcSegment
	sd, sok := inv.devices[src.Unmap()]
	dd, dok := inv.devices[dst.Unmap()]
	if sok {
		ev.SrcDevice = sd.Name
	}
	if dok {
		ev.DstDevice = dd.Name
	}
	switch {
	case sok:
		ev.Device, ev.Owner, ev.Category = sd.Name, sd.Owner, sd.Category
	case dok:
		ev.Device, ev.Owner, ev.Category, ev.Segment = dd.Name, dd.Owner, dd.Category, ev.DstSegment
	}
}

// Holder holds the current snapshot; Load is safe from any goroutine.
type Holder struct{ p atomic.Pointer[Inventory] }

// NewHolder returns a holder with inv as its first snapshot.
func NewHolder(inv *Inventory) *Holder {
	h := &Holder{}
	h.p.Store(inv)
	return h
}

// Load returns the current snapshot.
func (h *Holder) Load() *Inventory { return h.p.Load() }

// Store replaces the snapshot.
func (h *Holder) Store(inv *Inventory) { h.p.Store(inv) }
