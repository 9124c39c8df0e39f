package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/segwatch/segwatch/config"
	"github.com/segwatch/segwatch/ingest/inventory"
)

// Scenarios of `segwatch simulate`; each injects what one detector must find.
var scenarios = []string{"normal", "lateral", "remote", "silent", "unknown", "decommissioned", "all"}

func simulateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("simulate", stderr)
	syslogAddr := fs.String("syslog", "127.0.0.1:5514", "syslog address of the server (host:port, or off)")
	transport := fs.String("transport", "tcp", "syslog transport: tcp (octet counting, nothing lost) or udp")
	netflowAddr := fs.String("netflow", "127.0.0.1:2055", "NetFlow address of the server (host:port, or off)")
	devices := fs.Int("devices", 0, "number of devices (0: the inventory's; more adds synthetic ones)")
	rate := fs.Float64("rate", 50, "events per second in all (syslog messages plus flow records)")
	duration := fs.Duration("duration", time.Minute, "how long to send (0: until interrupted or --count is reached)")
	count := fs.Int("count", 0, "stop after this many events (0: no limit)")
	scenario := fs.String("scenario", "normal", strings.Join(scenarios, "|"))
	cfgPath := fs.String("config", "", "config whose inventory to speak for (default: the embedded one)")
	seed := fs.Uint64("seed", 1, "random seed (the same seed sends the same traffic)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	valid := false
	for _, s := range scenarios {
		valid = valid || s == *scenario
	}
	if !valid {
		return usagef("simulate: --scenario %q: want one of %s", *scenario, strings.Join(scenarios, ", "))
	}
	if *rate <= 0 {
		return usagef("simulate: --rate must be positive")
	}
	if *transport != "tcp" && *transport != "udp" {
		return usagef("simulate: --transport %q: want tcp or udp", *transport)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return usageError{err}
	}
	inv, err := cfg.Inventory()
	if err != nil {
		return usageError{err}
	}
	sim := newSimulator(inv, *devices, *scenario, *seed)
	sim.logs, sim.flows = *syslogAddr != "off", *netflowAddr != "off"
	if !sim.logs && !sim.flows {
		return usagef("simulate: --syslog and --netflow are both off")
	}

	var logw *bufio.Writer
	var udpConn net.Conn
	if *syslogAddr != "off" {
		c, err := net.Dial(*transport, *syslogAddr)
		if err != nil {
			return fmt.Errorf("simulate: connect syslog: %w", err)
		}
		defer c.Close()
		if *transport == "udp" {
			udpConn = c
		} else {
			logw = bufio.NewWriterSize(c, 64<<10)
			defer logw.Flush()
		}
	}
	var flowConn net.Conn
	if *netflowAddr != "off" {
		c, err := net.Dial("udp", *netflowAddr)
		if err != nil {
			return fmt.Errorf("simulate: connect netflow: %w", err)
		}
		defer c.Close()
		flowConn = c
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	// Send in ticks of 10 ms so the rate is smooth and a burst never piles up.
	const tick = 10 * time.Millisecond
	start := time.Now()
	var sent, logs, flows int
	var flowBuf []flowRec
	var msg []byte
	last := false
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if len(flowBuf) > 0 && flowConn != nil {
				flowConn.Write(encodeV5(flowBuf, start, time.Now()))
			}
			fmt.Fprintf(stdout, "sent %d syslog messages and %d flow records in %s\n", logs, flows, time.Since(start).Round(time.Millisecond))
			return nil
		case now := <-t.C:
			due := int(now.Sub(start).Seconds()**rate) - sent
			if *count > 0 && sent+due >= *count {
				due = *count - sent
				last = true
			}
			for i := 0; i < due; i++ {
				sent++
				ev := sim.next(now)
				if ev.flow != nil {
					if flowConn == nil {
						continue
					}
					flows++
					flowBuf = append(flowBuf, *ev.flow)
					if len(flowBuf) == 30 {
						if _, err := flowConn.Write(encodeV5(flowBuf, start, now)); err != nil {
							return fmt.Errorf("simulate: send netflow: %w", err)
						}
						flowBuf = flowBuf[:0]
					}
					continue
				}
				if logw == nil && udpConn == nil {
					continue
				}
				logs++
				msg = ev.appendSyslog(msg[:0], now)
				if udpConn != nil {
					udpConn.Write(msg)
					continue
				}
				logw.WriteString(strconv.Itoa(len(msg)))
				logw.WriteByte(' ')
				if _, err := logw.Write(msg); err != nil {
					return fmt.Errorf("simulate: send syslog: %w", err)
				}
			}
			if logw != nil {
				if err := logw.Flush(); err != nil {
					return fmt.Errorf("simulate: send syslog: %w", err)
				}
			}
			if len(flowBuf) > 0 && flowConn != nil && now.Sub(start) > time.Second {
				flowConn.Write(encodeV5(flowBuf, start, now))
				flowBuf = flowBuf[:0]
			}
			if last {
				cancel()
			}
		}
	}
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default()
	}
	return config.Load(path)
}

// simDevice is one device the simulator speaks for.
type simDevice struct {
	name     string
	ip       netip.Addr
	category string
}

type flowRec struct {
	src, dst         netip.Addr
	srcPort, dstPort uint16
	proto            uint8
	bytes, packets   uint32
	dur              time.Duration
}

type simEvent struct {
	dev      simDevice
	app      string
	severity int
	text     string
	flow     *flowRec
}

type simulator struct {
	rng      *rand.Rand
	devices  []simDevice
	servers  []simDevice
	scenario string
	silent   string // a device that says nothing (silent scenario)
	n        uint64
	// logs and flows say which outputs are on; next only makes those.
	logs, flows bool
}

func newSimulator(inv *inventory.Inventory, n int, scenario string, seed uint64) *simulator {
	s := &simulator{rng: rand.New(rand.NewPCG(seed, seed^0x5e9)), scenario: scenario}
	for _, d := range inv.Devices() {
		if d.Status == inventory.StatusDecommissioned || !d.IP.Is4() {
			continue
		}
		sd := simDevice{name: d.Name, ip: d.IP, category: d.Category}
		if d.Category == "server" {
			s.servers = append(s.servers, sd)
		}
		s.devices = append(s.devices, sd)
	}
	if len(s.servers) == 0 {
		s.servers = []simDevice{{name: "nvr-01", ip: netip.MustParseAddr("10.30.0.5"), category: "server"}}
	}
	// Synthetic devices beyond the inventory, in 10.40.0.0/16 (not in the
	// inventory: they load the pipeline, and are "unknown" to the detectors).
	cats := []string{"camera", "sensor", "access-control", "meter", "hvac"}
	for i := len(s.devices); i < n; i++ {
		ip := netip.AddrFrom4([4]byte{10, 40, byte(i / 250), byte(i%250 + 1)})
		s.devices = append(s.devices, simDevice{name: fmt.Sprintf("iot-%05d", i), ip: ip, category: cats[i%len(cats)]})
	}
	if scenario == "silent" || scenario == "all" {
		for i, d := range s.devices {
			if d.category == "sensor" {
				s.silent = d.name
				s.devices = append(s.devices[:i:i], s.devices[i+1:]...)
				break
			}
		}
	}
	return s
}

func (s *simulator) pick(list []string) string { return list[s.rng.IntN(len(list))] }

// next returns the next event: mostly normal device chatter, with the
// scenario's incidents mixed in at about 1 in 200.
func (s *simulator) next(now time.Time) simEvent {
	s.n++
	if s.scenario != "normal" && s.n%200 == 0 {
		if ev, ok := s.incident(); ok && (ev.flow == nil && s.logs || ev.flow != nil && s.flows) {
			return ev
		}
	}
	d := s.devices[s.rng.IntN(len(s.devices))]
	if !s.logs || s.flows && s.rng.IntN(3) == 0 {
		return simEvent{dev: d, flow: s.normalFlow(d)}
	}
	return s.normalLog(d)
}

func (s *simulator) normalFlow(d simDevice) *flowRec {
	srv := s.servers[s.rng.IntN(len(s.servers))]
	f := &flowRec{src: d.ip, dst: srv.ip, srcPort: uint16(32768 + s.rng.IntN(28000)), proto: 6,
		packets: uint32(1 + s.rng.IntN(200)), dur: time.Duration(s.rng.IntN(30000)) * time.Millisecond}
	switch d.category {
	case "camera":
		f.dstPort = 554
	case "sensor":
		f.dstPort = 1883
	case "hvac":
		f.dstPort, f.proto = 47808, 17
	default:
		f.dstPort = 443
	}
	f.bytes = f.packets * uint32(60+s.rng.IntN(1400))
	return f
}

func (s *simulator) normalLog(d simDevice) simEvent {
	r := s.rng
	ip := func() string { return fmt.Sprintf("10.10.0.%d", 2+r.IntN(200)) }
	ev := simEvent{dev: d, severity: 6}
	switch d.category {
	case "camera":
		ev.app = s.pick([]string{"rtspd", "httpd", "motiond", "ntpd"})
		ev.text = s.pick([]string{
			"RTSP session started client=10.30.0.5 stream=main",
			"RTSP session closed client=10.30.0.5 duration=" + strconv.Itoa(r.IntN(3600)) + "s",
			"Motion detected in zone " + strconv.Itoa(1+r.IntN(4)),
			"GET /axis-cgi/param.cgi from 10.30.0.5 status 200",
			"NTP sync ok offset=0.00" + strconv.Itoa(r.IntN(9)) + "s",
		})
		if r.IntN(40) == 0 {
			ev.app, ev.severity, ev.text = "httpd", 4, "login failed for user admin from "+ip()
		}
	case "sensor":
		ev.app = s.pick([]string{"mqtt", "sensord"})
		ev.text = fmt.Sprintf("temperature=%.1fC humidity=%d%% battery=%d%%", 18+r.Float64()*8, 30+r.IntN(30), 50+r.IntN(50))
		if ev.app == "mqtt" {
			ev.text = "publish topic=sensors/" + d.name + " qos=1 bytes=" + strconv.Itoa(40+r.IntN(80))
		}
	case "access-control":
		ev.app = "doorctl"
		ev.text = fmt.Sprintf("Access granted badge=%06d door=%s user=emp%03d", r.IntN(5000), d.name, r.IntN(300))
		if r.IntN(20) == 0 {
			ev.severity, ev.text = 4, fmt.Sprintf("Access denied badge=%06d door=%s reason=unknown badge", 9000+r.IntN(999), d.name)
		}
	case "meter":
		ev.app = "meterd"
		ev.text = fmt.Sprintf("reading kWh=%.1f voltage=%.1f current=%.1f", 100000+r.Float64()*5000, 228+r.Float64()*4, r.Float64()*30)
	case "hvac":
		ev.app = "bacnet"
		ev.text = fmt.Sprintf("AHU supply temp %.1fC setpoint 19.0C fan %d%%", 17+r.Float64()*3, 40+r.IntN(50))
	default:
		ev.app = "sshd"
		ev.text = fmt.Sprintf("Accepted publickey for admin from %s port %d ssh2", ip(), 40000+r.IntN(20000))
		if r.IntN(30) == 0 {
			ev.severity, ev.text = 4, "Failed password for root from "+ip()+" port 22 ssh2"
		}
	}
	return ev
}

// incident returns one event of the scenario's kind (for "all", of a kind
// chosen in turn).
func (s *simulator) incident() (simEvent, bool) {
	kind := s.scenario
	if kind == "all" {
		kinds := []string{"lateral", "remote", "unknown", "decommissioned"}
		kind = kinds[int(s.n/200)%len(kinds)]
	}
	cam := netip.MustParseAddr("10.20.0.11")
	switch kind {
	case "lateral":
		// A camera reaching into the office on SMB: no policy allows it.
		return simEvent{dev: simDevice{name: "cam-lobby-01", ip: cam}, flow: &flowRec{
			src: cam, dst: netip.MustParseAddr("10.10.0.25"), srcPort: 49152, dstPort: 445, proto: 6, packets: 12, bytes: 2400, dur: time.Second}}, true
	case "remote":
		// SSH to a camera from an address outside the maintenance ranges.
		return simEvent{dev: simDevice{name: "cam-parking-01", ip: netip.MustParseAddr("10.20.0.21")}, flow: &flowRec{
			src: netip.MustParseAddr("198.51.100.23"), dst: netip.MustParseAddr("10.20.0.21"), srcPort: 51515, dstPort: 22, proto: 6, packets: 40, bytes: 6400, dur: 3 * time.Second}}, true
	case "unknown":
		unk := simDevice{name: "10.20.0.77", ip: netip.MustParseAddr("10.20.0.77"), category: "camera"}
		if s.n%400 == 0 {
			return simEvent{dev: unk, app: "httpd", severity: 5, text: "device boot complete firmware=1.0.0"}, true
		}
		return simEvent{dev: unk, flow: &flowRec{src: unk.ip, dst: netip.MustParseAddr("10.30.0.5"), srcPort: 40000, dstPort: 554, proto: 6, packets: 100, bytes: 90000, dur: 10 * time.Second}}, true
	case "decommissioned":
		old := simDevice{name: "cam-old-01", ip: netip.MustParseAddr("10.20.0.99"), category: "camera"}
		if s.n%400 == 0 {
			return simEvent{dev: old, app: "rtspd", severity: 6, text: "RTSP session started client=10.30.0.5 stream=main"}, true
		}
		return simEvent{dev: old, flow: &flowRec{src: old.ip, dst: netip.MustParseAddr("10.30.0.5"), srcPort: 40001, dstPort: 554, proto: 6, packets: 80, bytes: 64000, dur: 5 * time.Second}}, true
	}
	return simEvent{}, false
}

// appendSyslog renders the event as RFC 5424 with the device name as host,
// so a server enriches it by name although it arrives from this machine.
func (ev simEvent) appendSyslog(b []byte, now time.Time) []byte {
	pri := 16*8 + ev.severity // local0
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(pri), 10)
	b = append(b, ">1 "...)
	b = now.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	b = append(b, ' ')
	b = append(b, ev.dev.name...)
	b = append(b, ' ')
	b = append(b, ev.app...)
	b = append(b, " - - - "...)
	b = append(b, ev.text...)
	return b
}

// encodeV5 builds one NetFlow v5 export packet (at most 30 records).
func encodeV5(recs []flowRec, boot, now time.Time) []byte {
	b := make([]byte, 24+48*len(recs))
	uptime := uint32(now.Sub(boot).Milliseconds()) + 1_000_000
	binary.BigEndian.PutUint16(b[0:], 5)
	binary.BigEndian.PutUint16(b[2:], uint16(len(recs)))
	binary.BigEndian.PutUint32(b[4:], uptime)
	binary.BigEndian.PutUint32(b[8:], uint32(now.Unix()))
	binary.BigEndian.PutUint32(b[12:], uint32(now.Nanosecond()))
	for i, r := range recs {
		o := b[24+48*i:]
		s4, d4 := r.src.As4(), r.dst.As4()
		copy(o[0:], s4[:])
		copy(o[4:], d4[:])
		binary.BigEndian.PutUint32(o[16:], r.packets)
		binary.BigEndian.PutUint32(o[20:], r.bytes)
		binary.BigEndian.PutUint32(o[24:], uptime-uint32(r.dur.Milliseconds()))
		binary.BigEndian.PutUint32(o[28:], uptime)
		binary.BigEndian.PutUint16(o[32:], r.srcPort)
		binary.BigEndian.PutUint16(o[34:], r.dstPort)
		o[38] = r.proto
	}
	return b
}
