package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if c.RetentionDays != 90 || len(c.Segments) == 0 || len(c.Devices) == 0 {
		t.Fatalf("default config looks empty: %+v", c)
	}
	inv, err := c.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	d, ok := inv.DeviceByName("cam-lobby-01")
	if !ok || d.Owner != "facilities@example.com" || d.CriticalUpdateSince.IsZero() {
		t.Fatalf("cam-lobby-01 = %+v, %v", d, ok)
	}
	if c.Syslog.Location != time.UTC || c.Netflow.Aggregate.D() != time.Minute {
		t.Fatalf("syslog/netflow defaults: %+v %+v", c.Syslog, c.Netflow)
	}
}

func TestEmptyFileMeansDefaults(t *testing.T) {
	c, err := Parse("empty.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.RetentionDays != 90 || c.SLA.Low != 5 || c.Syslog.MaxMessageBytes != 65536 {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

// TestErrors checks that each broken config is refused with one line that
// names the file, the key and the problem.
func TestErrors(t *testing.T) {
	f := func(yaml, want string) {
		t.Helper()
		_, err := Parse("site.yaml", []byte(yaml))
		if err == nil {
			t.Fatalf("%q: no error, want %q", yaml, want)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Fatalf("%q: error has several lines: %q", yaml, msg)
		}
		if !strings.HasPrefix(msg, "config site.yaml: ") || !strings.Contains(msg, want) {
			t.Fatalf("%q: error %q, want it to contain %q", yaml, msg, want)
		}
	}
	f("retention_dayz: 90\n", `line 1: unknown key "retention_dayz"`)
	f("syslog:\n  timezon: UTC\n", `line 2: unknown key "timezon"`)
	f("retention_days: 30\n", "retention_days: 30 is below the 90 days")
	f("segments:\n  - {name: cams, kind: iot, cidrs: [10.20.0.0/33]}\n", `segments[0].cidrs[0]: "10.20.0.0/33" is not a CIDR`)
	f("segments:\n  - {name: a, cidrs: [10.0.0.0/8]}\n  - {name: b, cidrs: [10.20.0.0/24]}\n", "overlaps")
	f("segments:\n  - {name: a, cidrs: [10.0.0.0/8]}\npolicy:\n  - {from: a, to: nowhere}\n", `policy[0].to: no segment named "nowhere"`)
	f("segments:\n  - {name: a, cidrs: [10.0.0.0/8]}\n  - {name: a, cidrs: [11.0.0.0/8]}\n", `segment "a" is defined twice`)
	f("policy:\n  - {from: a, to: b, ports: [tcp-22]}\n", `port "tcp-22"`)
	f("devices:\n  - {name: x, ip: 10.0.0.300}\n", `devices[0]: ip: "10.0.0.300" is not an IP address`)
	f("devices:\n  - {name: x, ip: 10.0.0.3}\n  - {name: y, ip: 10.0.0.3}\n", "already belongs to")
	f("devices:\n  - {name: x, status: retired}\n", `status: "retired"`)
	f("devices:\n  - {name: x, status: decommissioned}\n", "decommissioned_at")
	f("devices:\n  - {name: x, firmware_updated: yesterday}\n", `time "yesterday"`)
	f("categories:\n  camera: {silent_after: 10 minutes}\n", `duration "10 minutes"`)
	f("categories:\n  camera: {criticality: huge}\n", `categories.camera.criticality: "huge"`)
	f("categories:\n  camera: {}\ndevices:\n  - {name: x, category: cmaera}\n", `devices[0].category: "cmaera" is not defined`)
	f("syslog:\n  timezone: Mars/Olympus\n", `syslog.timezone: "Mars/Olympus"`)
	f("sla: {critical: 0}\n", "sla.critical: 0")
	f("syslog:\n  tls: {cert: a.crt}\n", "syslog.tls: cert and key go together")
	f("remote_access:\n  allowed_sources: [vendor-net]\n", `remote_access.allowed_sources[0]: "vendor-net"`)
	f("segments: [1, 2\n", "did not find expected")
	f("segments:\n  - {name: external, cidrs: [10.0.0.0/8]}\n", "reserved")
}

func TestShortRetentionAllowed(t *testing.T) {
	c, err := Parse("x", []byte("retention_days: 7\nallow_short_retention: true\n"))
	if err != nil || c.RetentionDays != 7 {
		t.Fatalf("got %v, %v", c, err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "no such file") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v", err)
	}
}

// TestConfigurations runs the whole-config cases under
// testdata/configurations/<case>/: config.yaml plus either expected.err
// (a substring of the one-line error) or nothing (valid).
func TestConfigurations(t *testing.T) {
	dirs, err := filepath.Glob("../testdata/configurations/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no configuration cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			_, err := Load(filepath.Join(dir, "config.yaml"))
			want, rerr := os.ReadFile(filepath.Join(dir, "expected.err"))
			switch {
			case rerr != nil && err != nil:
				t.Fatalf("valid case refused: %v", err)
			case rerr == nil && err == nil:
				t.Fatalf("invalid case accepted, want %q", want)
			case rerr == nil && !strings.Contains(err.Error(), strings.TrimSpace(string(want))):
				t.Fatalf("error %q, want %q", err, want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(DefaultYAML())
	f.Add([]byte("segments:\n  - {name: a, cidrs: [10.0.0.0/8]}\n"))
	f.Add([]byte("devices:\n  - {name: x, ip: 10.0.0.3, firmware_updated: 2026-01-01}\n"))
	f.Add([]byte("policy:\n  - {from: a, to: b, ports: [tcp/22]}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("fuzz.yaml", b)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		if _, err := c.Inventory(); err != nil {
			t.Fatalf("valid config whose inventory fails: %v", err)
		}
	})
}
