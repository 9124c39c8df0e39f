package match

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

// genEvents returns n realistic events (about 2/3 syslog, 1/3 flows) from a
// fixed seed, one second apart from base.
func genEvents(n int, seed uint64) []event.Event {
	r := rand.New(rand.NewPCG(seed, 42))
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	apps := []string{"sshd", "kernel", "rtspd", "httpd", "ntpd", "dropbear"}
	msgs := []func() string{
		func() string {
			return fmt.Sprintf("Failed password for admin from 10.10.0.%d port %d ssh2", r.IntN(30), 40000+r.IntN(20000))
		},
		func() string { return "login failed for user root" },
		func() string {
			return fmt.Sprintf("Login FAILED: user=%s", []string{"root", "admin", "guest"}[r.IntN(3)])
		},
		func() string { return fmt.Sprintf("Accepted publickey for svc from 10.30.0.%d", r.IntN(20)) },
		func() string { return fmt.Sprintf("src=10.20.0.%d:443 failed.", r.IntN(60)) },
		func() string { return fmt.Sprintf("stream started channel %d (%dx%d)", r.IntN(8), 1920, 1080) },
		func() string { return fmt.Sprintf("temperature %d.%dC ok", 30+r.IntN(20), r.IntN(10)) },
		func() string { return "firmware version 10.12.1 loaded; -v check ok" },
		func() string { return "connection reset by peer <b>&amp;</b>" },
		func() string { return "Überhitzung erkannt: Lüfter läuft" },
		func() string { return "failed login" },
	}
	protos := []string{"tcp", "tcp", "udp", "icmp"}
	ports := []int{443, 554, 22, 3389, 80, 8080, 123, 53}
	evs := make([]event.Event, n)
	for i := range evs {
		ev := &evs[i]
		ev.ID = fmt.Sprintf("ev%06d", i)
		ev.Time = base.Add(time.Duration(i) * time.Second).Add(time.Duration(r.IntN(1000)) * time.Millisecond)
		ev.Received = ev.Time.Add(time.Second)
		dev := r.IntN(40)
		if r.IntN(3) > 0 {
			ev.Kind = event.KindLog
			ev.SourceIP = fmt.Sprintf("10.20.0.%d", 10+dev)
			ev.Host = fmt.Sprintf("cam-%02d", dev)
			if dev%7 == 0 {
				ev.Host = fmt.Sprintf("CAM-%02d", dev)
			}
			if dev < 35 {
				ev.Device = fmt.Sprintf("cam-lobby-%02d", dev)
				ev.Segment = "cameras"
				ev.Category = "camera"
				ev.Owner = "facilities@example.com"
			}
			ev.App = apps[r.IntN(len(apps))]
			ev.ProcID = fmt.Sprint(100 + r.IntN(900))
			ev.Facility = r.IntN(24)
			ev.Severity = r.IntN(8)
			ev.Message = msgs[r.IntN(len(msgs))]()
			ev.Raw = "<13>" + ev.Message
			switch r.IntN(10) {
			case 0:
				ev.SD = map[string]map[string]string{"origin": {"ip": ev.SourceIP, "software": "AxisOS"}}
			case 1:
				ev.SD = map[string]map[string]string{"meta": {"sequenceId": fmt.Sprint(r.IntN(100))}}
			case 2:
				ev.Severity, ev.Facility = event.NoSeverity, event.NoSeverity
				ev.ParseError = "no PRI: message does not start with '<'"
				ev.Host, ev.App, ev.ProcID = "", "", ""
			}
			if r.IntN(50) == 0 {
				ev.Truncated = true
			}
		} else {
			ev.Kind = event.KindFlow
			ev.Severity, ev.Facility = event.NoSeverity, event.NoSeverity
			ev.SourceIP = "10.0.0.1"
			ev.SrcIP = fmt.Sprintf("10.20.0.%d", 10+dev)
			ev.SrcSegment = "cameras"
			if r.IntN(4) == 0 {
				ev.DstIP = fmt.Sprintf("203.0.113.%d", r.IntN(255))
				ev.DstSegment = event.SegmentExternal
			} else {
				ev.DstIP = fmt.Sprintf("10.30.0.%d", r.IntN(20))
				ev.DstSegment = "servers"
			}
			ev.Proto = protos[r.IntN(len(protos))]
			if ev.Proto != "icmp" {
				ev.SrcPort = 32768 + r.IntN(28000)
				ev.DstPort = ports[r.IntN(len(ports))]
			}
			ev.Packets = uint64(1 + r.IntN(1000))
			ev.Bytes = ev.Packets * uint64(40+r.IntN(1400))
			ev.FlowVersion = []int{5, 9, 10}[r.IntN(3)]
			ev.Flows = uint64(1 + r.IntN(20))
			ev.End = ev.Time.Add(time.Minute)
			if dev < 35 {
				ev.SrcDevice = fmt.Sprintf("cam-lobby-%02d", dev)
				ev.Device = ev.SrcDevice
				ev.Segment = "cameras"
			}
		}
	}
	return evs
}

// blocks groups events into blocks of at most size events of one stream
// (kind, source_ip), the way the store does; it returns event indexes.
func blocks(evs []event.Event, size int) [][]int {
	open := map[string][]int{}
	var out [][]int
	var order []string
	for i := range evs {
		k := evs[i].Kind + "|" + evs[i].SourceIP
		if _, ok := open[k]; !ok {
			order = append(order, k)
		}
		open[k] = append(open[k], i)
		if len(open[k]) == size {
			out = append(out, open[k])
			open[k] = []int{}
		}
	}
	for _, k := range order {
		if len(open[k]) > 0 {
			out = append(out, open[k])
		}
	}
	return out
}
