package index

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

// GenConfig describes a synthetic data set for benchmarks and load tests.
type GenConfig struct {
	// Devices is the number of devices sending (200-2000 is realistic).
	Devices int
	// Events is how many events to generate, spread evenly over [Start, End).
	Events     int
	Start, End time.Time
	// FlowShare is the fraction of flow events (the rest are syslog).
	FlowShare float64
	// Seed makes the data set reproducible.
	Seed uint64
}

// Generator produces a realistic stream of IoT events in time order:
// devices of a few categories in their segments, each with its apps and a
// skewed rate (some chatty, most quiet), messages from templates with IPs,
// users, ports and numbers, and aggregated flows between segments.
type Generator struct {
	cfg     GenConfig
	rng     *rand.Rand
	devs    []genDevice
	weights []int // cumulative device weights
	n       int
	step    time.Duration
}

type genDevice struct {
	name, ip, segment, category, owner string
	apps                               []int
}

var genCategories = []struct {
	category, prefix, segment, net string
}{
	{"camera", "cam", "cameras", "10.20"},
	{"sensor", "sens", "sensors", "10.40"},
	{"badge", "badge", "access", "10.50"},
	{"printer", "prn", "office", "10.10"},
	{"hvac", "hvac", "building", "10.60"},
}

var genLocations = []string{"lobby", "floor1", "floor2", "floor3", "garage", "dock", "lab", "roof"}

var genUsers = []string{"admin", "root", "operator", "service", "guest", "jdoe", "asmith", "maint", "backup", "ubnt"}

// genApp is one application and its message templates. In templates, %i is
// an IP address, %u a user, %p a port, %n a number, %h a hex id.
type genApp struct {
	name     string
	facility int
	tmpl     []genTmpl
}

type genTmpl struct {
	sev  int
	text string
	freq int
}

var genApps = []genApp{
	{"sshd", 4, []genTmpl{
		{4, "Failed password for invalid user %u from %i port %p ssh2", 3},
		{6, "Accepted publickey for %u from %i port %p ssh2", 2},
		{6, "Connection closed by %i port %p [preauth]", 3},
		{3, "error: maximum authentication attempts exceeded for %u from %i port %p ssh2", 1},
	}},
	{"kernel", 0, []genTmpl{
		{6, "eth0: link up, 100Mbps, full-duplex, lpa 0x%h", 2},
		{4, "nf_conntrack: table full, dropping packet", 1},
		{2, "Out of memory: Killed process %n (streamer) total-vm:%nkB", 1},
		{6, "usb 1-1: new high-speed USB device number %n using ehci-platform", 1},
	}},
	{"dhcpd", 3, []genTmpl{
		{6, "DHCPACK on %i to 00:1a:%h via eth1", 4},
		{6, "DHCPREQUEST for %i from 00:1a:%h via eth1", 4},
		{4, "DHCPDECLINE of %i from 00:1a:%h via eth1: abandoned", 1},
	}},
	{"rtspd", 16, []genTmpl{
		{6, "stream %n started for client %i:%p", 4},
		{5, "RTSP session %h timeout after %ns", 2},
		{3, "login failed for user %u from %i", 1},
	}},
	{"ntpd", 12, []genTmpl{
		{6, "time offset 0.00%n s, frequency %n.%n ppm, poll 64", 3},
		{4, "no reply from server %i, trying next", 1},
	}},
	{"httpd", 16, []genTmpl{
		{6, "GET /api/v1/status 200 %n bytes from %i", 4},
		{5, "POST /login 401 user=%u from %i", 2},
		{4, "GET /cgi-bin/admin.cgi 403 from %i", 1},
	}},
	{"fwupd", 1, []genTmpl{
		{6, "firmware check: version 10.%n.%n installed, no update", 3},
		{4, "firmware update available: version 11.%n.%n (critical)", 1},
		{3, "firmware signature verification failed for image %h", 1},
	}},
	{"snmpd", 3, []genTmpl{
		{6, "Received SNMP packet(s) from UDP: [%i]:%p->[10.0.0.1]:161", 3},
		{4, "Connection from UDP: [%i]:%p rejected: unknown community", 1},
	}},
}

// NewGenerator validates cfg and returns a Generator.
func NewGenerator(cfg GenConfig) (*Generator, error) {
	if cfg.Devices < 1 || cfg.Events < 1 || !cfg.Start.Before(cfg.End) {
		return nil, errors.New("generate: need devices, events and a time span")
	}
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5e9a7c4)), step: cfg.End.Sub(cfg.Start) / time.Duration(cfg.Events)}
	total := 0
	for i := 0; i < cfg.Devices; i++ {
		c := genCategories[i%len(genCategories)]
		d := genDevice{
			name:     fmt.Sprintf("%s-%s-%02d", c.prefix, genLocations[(i/len(genCategories))%len(genLocations)], i/(len(genCategories)*len(genLocations))+1),
			ip:       fmt.Sprintf("%s.%d.%d", c.net, (i/250)%250, i%250+1),
			segment:  c.segment,
			category: c.category,
			owner:    genLocations[i%len(genLocations)] + "-team@example.com",
		}
		for j := 0; j < 2+i%2; j++ {
			d.apps = append(d.apps, (i+j*3)%len(genApps))
		}
		g.devs = append(g.devs, d)
		// Skewed rates: one device in ten is 20 times chattier.
		w := 1
		if i%10 == 0 {
			w = 20
		}
		total += w
		g.weights = append(g.weights, total)
	}
	return g, nil
}

func (g *Generator) device() *genDevice {
	x := g.rng.IntN(g.weights[len(g.weights)-1])
	lo, hi := 0, len(g.weights)-1
	for lo < hi {
		m := (lo + hi) / 2
		if g.weights[m] > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return &g.devs[lo]
}

// Done reports whether every event has been generated.
func (g *Generator) Done() bool { return g.n >= g.cfg.Events }

// Next fills ev with the next event (times increase, with jitter).
func (g *Generator) Next(ev *event.Event) {
	// Millisecond times, like most syslog senders and NetFlow exporters.
	t := g.cfg.Start.Add(time.Duration(g.n)*g.step + time.Duration(g.rng.Int64N(int64(g.step)+1))).Truncate(time.Millisecond)
	g.n++
	d := g.device()
	*ev = event.Event{
		Time:     t,
		Received: t.Add(time.Duration(g.rng.IntN(2000)) * time.Millisecond),
		SourceIP: d.ip,
		Device:   d.name,
		Segment:  d.segment,
		Category: d.category,
		Owner:    d.owner,
		Facility: event.NoSeverity,
		Severity: event.NoSeverity,
	}
	if g.rng.Float64() < g.cfg.FlowShare {
		ev.Kind = event.KindFlow
		ev.SourceIP = "10.0.0.2" // the exporter
		ev.SrcIP, ev.SrcDevice, ev.SrcSegment = d.ip, d.name, d.segment
		o := &g.devs[g.rng.IntN(len(g.devs))]
		ev.DstIP, ev.DstDevice, ev.DstSegment = o.ip, o.name, o.segment
		if g.rng.IntN(4) == 0 {
			ev.DstIP, ev.DstDevice, ev.DstSegment = "203.0.113."+strconv.Itoa(g.rng.IntN(254)+1), "", event.SegmentExternal
		}
		ev.SrcPort = 1024 + g.rng.IntN(60000)
		ev.DstPort = []int{443, 554, 80, 22, 123, 53, 8080, 1883}[g.rng.IntN(8)]
		ev.Proto = []string{"tcp", "tcp", "tcp", "udp"}[g.rng.IntN(4)]
		ev.Packets = uint64(1 + g.rng.IntN(500))
		ev.Bytes = ev.Packets * uint64(60+g.rng.IntN(1400))
		ev.FlowVersion = 10
		ev.Flows = uint64(1 + g.rng.IntN(20))
		ev.End = t.Add(time.Minute)
		return
	}
	ev.Kind = event.KindLog
	ev.Host = d.name
	a := &genApps[d.apps[g.rng.IntN(len(d.apps))]]
	ev.App = a.name
	// A process keeps its ID: derive it from the device and the app.
	ev.ProcID = strconv.Itoa(100 + (len(d.name)*7919+len(a.name)*104729+int(d.ip[len(d.ip)-1]))%30000)
	tot := 0
	for _, tm := range a.tmpl {
		tot += tm.freq
	}
	x := g.rng.IntN(tot)
	tm := a.tmpl[0]
	for _, c := range a.tmpl {
		if x < c.freq {
			tm = c
			break
		}
		x -= c.freq
	}
	ev.Facility, ev.Severity = a.facility, tm.sev
	ev.Message = g.fill(tm.text)
	ev.Raw = "<" + strconv.Itoa(a.facility*8+tm.sev) + ">1 " + t.Format(time.RFC3339Nano) + " " + d.name + " " + a.name + " " + ev.ProcID + " - - " + ev.Message
}

func (g *Generator) fill(tmpl string) string {
	b := make([]byte, 0, len(tmpl)+32)
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c != '%' || i+1 == len(tmpl) {
			b = append(b, c)
			continue
		}
		i++
		switch tmpl[i] {
		case 'i':
			if g.rng.IntN(3) == 0 {
				b = append(b, "203.0.113."...)
			} else {
				b = append(b, "10.20.0."...)
			}
			b = strconv.AppendInt(b, int64(1+g.rng.IntN(254)), 10)
		case 'u':
			b = append(b, genUsers[g.rng.IntN(len(genUsers))]...)
		case 'p':
			b = strconv.AppendInt(b, int64(1024+g.rng.IntN(60000)), 10)
		case 'n':
			b = strconv.AppendInt(b, int64(g.rng.IntN(5000)), 10)
		case 'h':
			b = strconv.AppendUint(b, g.rng.Uint64()&0xffffff, 16)
		default:
			b = append(b, '%', tmpl[i])
		}
	}
	return string(b)
}

// Generate appends a generated data set to s in batches of 1000 and
// flushes it. It returns how many events were stored (refused events, out of
// the store's retention window, are not counted).
func Generate(ctx context.Context, s *Store, cfg GenConfig) (int, error) {
	g, err := NewGenerator(cfg)
	if err != nil {
		return 0, err
	}
	batch := make([]event.Event, 1000)
	stored := 0
	for !g.Done() {
		if err := ctx.Err(); err != nil {
			return stored, err
		}
		n := 0
		for n < len(batch) && !g.Done() {
			g.Next(&batch[n])
			n++
		}
		refused, err := s.Append(batch[:n])
		stored += n - refused
		if err != nil {
			return stored, fmt.Errorf("generate: %w", err)
		}
	}
	return stored, s.Flush()
}
