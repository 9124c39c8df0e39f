// Package config loads and validates segwatch's YAML configuration (SPEC §2).
// Loading is strict: an unknown key, a CIDR that does not parse, overlapping
// segments or a policy naming a missing segment is an error that names the
// file, the key and the problem on one line, so `segwatch serve` can exit 2
// before it writes anything.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/segwatch/segwatch/ingest/inventory"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the embedded default configuration: a small example
// site so that `make run` shows something real.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Config is the whole configuration file.
type Config struct {
	RetentionDays       int                 `yaml:"retention_days"`
	AllowShortRetention bool                `yaml:"allow_short_retention"`
	Segments            []Segment           `yaml:"segments"`
	Policy              []PolicyRule        `yaml:"policy"`
	RemoteAccess        RemoteAccess        `yaml:"remote_access"`
	Categories          map[string]Category `yaml:"categories"`
	Devices             []Device            `yaml:"devices"`
	SLA                 SLA                 `yaml:"sla"`
	Syslog              Syslog              `yaml:"syslog"`
	Netflow             Netflow             `yaml:"netflow"`
	HTTP                HTTP                `yaml:"http"`
}

// Segment is a named group of address ranges.
type Segment struct {
	Name  string   `yaml:"name"`
	Kind  string   `yaml:"kind"`
	CIDRs []string `yaml:"cidrs"`

	Prefixes []netip.Prefix `yaml:"-"`
}

// Port is a protocol and port, written `tcp/554`.
type Port struct {
	Proto string
	Port  int
}

func (p Port) String() string { return p.Proto + "/" + strconv.Itoa(p.Port) }

// UnmarshalYAML parses `proto/port`.
func (p *Port) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParsePort(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ParsePort parses `tcp/22`, `udp/161`; the protocol is lower-cased.
func ParsePort(s string) (Port, error) {
	proto, num, ok := strings.Cut(s, "/")
	proto = strings.ToLower(strings.TrimSpace(proto))
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if !ok || proto == "" || err != nil || n < 0 || n > 65535 {
		return Port{}, fmt.Errorf("port %q: want protocol/number such as tcp/443", s)
	}
	return Port{Proto: proto, Port: n}, nil
}

// PolicyRule allows flows from one segment to another on some ports (all
// ports when Ports is empty).
type PolicyRule struct {
	From  string `yaml:"from"`
	To    string `yaml:"to"`
	Ports []Port `yaml:"ports"`
}

// RemoteAccess says who may reach devices on management ports.
type RemoteAccess struct {
	AllowedSources  []string `yaml:"allowed_sources"`
	ManagementPorts []Port   `yaml:"management_ports"`

	AllowedPrefixes []netip.Prefix `yaml:"-"`
}

// Category holds per-category settings.
type Category struct {
	SilentAfter Duration `yaml:"silent_after"`
	Criticality string   `yaml:"criticality"`
}

// Device is one inventory entry.
type Device struct {
	Name                string `yaml:"name"`
	IP                  string `yaml:"ip"`
	Category            string `yaml:"category"`
	Owner               string `yaml:"owner"`
	Vendor              string `yaml:"vendor"`
	Location            string `yaml:"location"`
	Purpose             string `yaml:"purpose"`
	Status              string `yaml:"status"`
	DecommissionedAt    Time   `yaml:"decommissioned_at"`
	Firmware            string `yaml:"firmware"`
	FirmwareUpdated     Time   `yaml:"firmware_updated"`
	CriticalUpdateSince Time   `yaml:"critical_update_since"`
}

// SLA holds resolution targets in working days by severity.
type SLA struct {
	Critical int `yaml:"critical"`
	High     int `yaml:"high"`
	Medium   int `yaml:"medium"`
	Low      int `yaml:"low"`
}

// Syslog configures the syslog receivers (addresses come from flags).
type Syslog struct {
	Timezone                string    `yaml:"timezone"`
	MaxMessageBytes         int       `yaml:"max_message_bytes"`
	MaxConnections          int       `yaml:"max_connections"`
	MaxConnectionsPerSource int       `yaml:"max_connections_per_source"`
	IdleTimeout             Duration  `yaml:"idle_timeout"`
	RateLimit               RateLimit `yaml:"rate_limit"`
	TLS                     SyslogTLS `yaml:"tls"`

	Location *time.Location `yaml:"-"`
}

// RateLimit is a per-source token bucket.
type RateLimit struct {
	Burst    int      `yaml:"burst"`
	Interval Duration `yaml:"interval"`
}

// SyslogTLS configures RFC 5425 syslog over TLS.
type SyslogTLS struct {
	Cert         string   `yaml:"cert"`
	Key          string   `yaml:"key"`
	ClientCA     string   `yaml:"client_ca"`
	AllowedPeers []string `yaml:"allowed_peers"`
}

// Netflow configures the NetFlow/IPFIX receiver.
type Netflow struct {
	Aggregate       Duration `yaml:"aggregate"`
	TemplateTimeout Duration `yaml:"template_timeout"`
}

// HTTP configures the UI and API server.
type HTTP struct {
	TLS            HTTPTLS  `yaml:"tls"`
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// HTTPTLS is the optional TLS of the UI and API.
type HTTPTLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Duration is a time.Duration written as `10m`, `5s`, `1h30m` or `0`.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	if s == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want a number with a unit such as 30s, 10m, 24h", s)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	*d = Duration(v)
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Time is a date (`2026-10-01`, midnight UTC) or an RFC 3339 time.
type Time struct{ time.Time }

// UnmarshalYAML parses a date or an RFC 3339 time.
func (t *Time) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParseTime(s)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// ParseTime parses `2026-10-01`, `2026-10-01T12:00:00Z` or the empty string
// (the zero time).
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if v, err := time.Parse("2006-01-02", s); err == nil {
		return v, nil
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want a date (2026-10-01) or RFC 3339 (2026-10-01T12:00:00Z)", s)
	}
	return v.UTC(), nil
}

// Severities of incidents, most severe first.
var Severities = []string{"critical", "high", "medium", "low"}

// Default returns the embedded default configuration, parsed and validated.
func Default() (*Config, error) { return Parse("(embedded default)", defaultYAML) }

// Load reads and validates the configuration at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, unwrapPathErr(err))
	}
	return Parse(path, b)
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse decodes and validates YAML; name is used in error messages.
func Parse(name string, b []byte) (*Config, error) {
	c := defaults()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// An empty file is a valid config: every default applies.
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %s", name, yamlError(err))
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return c, nil
}

var fieldNotFound = regexp.MustCompile(`line (\d+): field (\S+) not found in type \S+`)

// yamlError turns yaml.v3's multi-line errors into one line with line
// numbers and "unknown key" for the strict-mode case.
func yamlError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		parts := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			if m := fieldNotFound.FindStringSubmatch(e); m != nil {
				parts = append(parts, fmt.Sprintf("line %s: unknown key %q", m[1], m[2]))
				continue
			}
			parts = append(parts, strings.TrimPrefix(e, "yaml: "))
		}
		return strings.Join(parts, "; ")
	}
	return strings.ReplaceAll(strings.TrimPrefix(err.Error(), "yaml: "), "\n", " ")
}

func defaults() *Config {
	return &Config{
		RetentionDays: 90,
		SLA:           SLA{Critical: 1, High: 2, Medium: 3, Low: 5},
		Syslog: Syslog{
			Timezone:                "UTC",
			MaxMessageBytes:         65536,
			MaxConnections:          4096,
			MaxConnectionsPerSource: 200,
			IdleTimeout:             Duration(5 * time.Minute),
			RateLimit:               RateLimit{Burst: 10000, Interval: Duration(5 * time.Second)},
		},
		Netflow: Netflow{
			Aggregate:       Duration(time.Minute),
			TemplateTimeout: Duration(30 * time.Minute),
		},
	}
}

var segmentName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func (c *Config) validate() error {
	if c.RetentionDays < 1 {
		return fmt.Errorf("retention_days: %d is not a positive number of days", c.RetentionDays)
	}
	if c.RetentionDays < 90 && !c.AllowShortRetention {
		return fmt.Errorf("retention_days: %d is below the 90 days ISO 27001 asks for (set allow_short_retention: true to allow it)", c.RetentionDays)
	}
	names := map[string]bool{}
	for i := range c.Segments {
		s := &c.Segments[i]
		key := fmt.Sprintf("segments[%d]", i)
		if !segmentName.MatchString(s.Name) {
			return fmt.Errorf("%s.name: %q must be lower-case letters, digits, - or _", key, s.Name)
		}
		if s.Name == "external" {
			return fmt.Errorf("%s.name: \"external\" is reserved for public addresses", key)
		}
		if names[s.Name] {
			return fmt.Errorf("%s.name: segment %q is defined twice", key, s.Name)
		}
		names[s.Name] = true
		if len(s.CIDRs) == 0 {
			return fmt.Errorf("%s.cidrs: segment %q has no address ranges", key, s.Name)
		}
		s.Prefixes = s.Prefixes[:0]
		for j, cidr := range s.CIDRs {
			p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
			if err != nil {
				return fmt.Errorf("%s.cidrs[%d]: %q is not a CIDR such as 10.20.0.0/24", key, j, cidr)
			}
			s.Prefixes = append(s.Prefixes, p.Masked())
		}
	}
	// Overlaps are checked by the inventory, which owns the lookup.
	if _, err := inventory.New(c.InventorySegments(), nil); err != nil {
		return fmt.Errorf("segments: %w", err)
	}
	for i, r := range c.Policy {
		key := fmt.Sprintf("policy[%d]", i)
		if !names[r.From] {
			return fmt.Errorf("%s.from: no segment named %q", key, r.From)
		}
		if !names[r.To] {
			return fmt.Errorf("%s.to: no segment named %q", key, r.To)
		}
	}
	c.RemoteAccess.AllowedPrefixes = nil
	for i, s := range c.RemoteAccess.AllowedSources {
		p, err := parsePrefixOrAddr(s)
		if err != nil {
			return fmt.Errorf("remote_access.allowed_sources[%d]: %q is not an address or CIDR", i, s)
		}
		c.RemoteAccess.AllowedPrefixes = append(c.RemoteAccess.AllowedPrefixes, p)
	}
	for name, cat := range c.Categories {
		switch cat.Criticality {
		case "", "critical", "high", "medium", "low":
		default:
			return fmt.Errorf("categories.%s.criticality: %q is not one of critical, high, medium, low", name, cat.Criticality)
		}
	}
	if _, err := c.InventoryDevices(); err != nil {
		return err
	}
	if _, err := c.Inventory(); err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	for _, v := range []struct {
		key string
		n   int
	}{{"sla.critical", c.SLA.Critical}, {"sla.high", c.SLA.High}, {"sla.medium", c.SLA.Medium}, {"sla.low", c.SLA.Low}} {
		if v.n < 1 {
			return fmt.Errorf("%s: %d is not a positive number of working days", v.key, v.n)
		}
	}
	loc, err := time.LoadLocation(c.Syslog.Timezone)
	if err != nil {
		return fmt.Errorf("syslog.timezone: %q is not a known time zone", c.Syslog.Timezone)
	}
	c.Syslog.Location = loc
	if c.Syslog.MaxMessageBytes < 480 || c.Syslog.MaxMessageBytes > 1<<20 {
		return fmt.Errorf("syslog.max_message_bytes: %d is outside 480..1048576", c.Syslog.MaxMessageBytes)
	}
	if c.Syslog.MaxConnections < 1 {
		return fmt.Errorf("syslog.max_connections: %d must be at least 1", c.Syslog.MaxConnections)
	}
	if c.Syslog.MaxConnectionsPerSource < 1 {
		return fmt.Errorf("syslog.max_connections_per_source: %d must be at least 1", c.Syslog.MaxConnectionsPerSource)
	}
	if c.Syslog.RateLimit.Burst < 0 {
		return fmt.Errorf("syslog.rate_limit.burst: %d is negative", c.Syslog.RateLimit.Burst)
	}
	if (c.Syslog.TLS.Cert == "") != (c.Syslog.TLS.Key == "") {
		return fmt.Errorf("syslog.tls: cert and key go together")
	}
	if (c.HTTP.TLS.Cert == "") != (c.HTTP.TLS.Key == "") {
		return fmt.Errorf("http.tls: cert and key go together")
	}
	for i, s := range c.HTTP.TrustedProxies {
		if _, err := parsePrefixOrAddr(s); err != nil {
			return fmt.Errorf("http.trusted_proxies[%d]: %q is not an address or CIDR", i, s)
		}
	}
	return nil
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// InventorySegments converts the segments for the inventory.
func (c *Config) InventorySegments() []inventory.Segment {
	out := make([]inventory.Segment, 0, len(c.Segments))
	for _, s := range c.Segments {
		out = append(out, inventory.Segment{Name: s.Name, Kind: s.Kind, Prefixes: s.Prefixes})
	}
	return out
}

// InventoryDevices converts and checks the devices.
func (c *Config) InventoryDevices() ([]inventory.Device, error) {
	out := make([]inventory.Device, 0, len(c.Devices))
	for i, d := range c.Devices {
		key := fmt.Sprintf("devices[%d]", i)
		dev, err := DeviceFromFields(d.Name, d.IP, d.Category, d.Owner, d.Vendor, d.Location, d.Purpose, d.Status,
			d.DecommissionedAt.Time, d.Firmware, d.FirmwareUpdated.Time, d.CriticalUpdateSince.Time)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if len(c.Categories) > 0 && dev.Category != "" {
			if _, ok := c.Categories[dev.Category]; !ok {
				return nil, fmt.Errorf("%s.category: %q is not defined under categories", key, dev.Category)
			}
		}
		out = append(out, dev)
	}
	return out, nil
}

// DeviceFromFields validates one device's fields (shared by the config, the
// API and the CSV import).
func DeviceFromFields(name, ip, category, owner, vendor, location, purpose, status string,
	decommissionedAt time.Time, firmware string, firmwareUpdated, criticalUpdateSince time.Time) (inventory.Device, error) {
	d := inventory.Device{
		Name: strings.TrimSpace(name), Category: category, Owner: owner, Vendor: vendor,
		Location: location, Purpose: purpose, Status: status, DecommissionedAt: decommissionedAt,
		Firmware: firmware, FirmwareUpdated: firmwareUpdated, CriticalUpdateSince: criticalUpdateSince,
	}
	if d.Name == "" {
		return d, fmt.Errorf("name: is empty")
	}
	if strings.TrimSpace(ip) != "" {
		a, err := netip.ParseAddr(strings.TrimSpace(ip))
		if err != nil {
			return d, fmt.Errorf("ip: %q is not an IP address", ip)
		}
		d.IP = a.Unmap()
	}
	switch d.Status {
	case "":
		d.Status = inventory.StatusActive
	case inventory.StatusActive:
	case inventory.StatusDecommissioned:
		if d.DecommissionedAt.IsZero() {
			return d, fmt.Errorf("decommissioned_at: a decommissioned device needs the time it was decommissioned")
		}
	default:
		return d, fmt.Errorf("status: %q is not active or decommissioned", d.Status)
	}
	return d, nil
}

// Inventory builds the inventory snapshot from the config.
func (c *Config) Inventory() (*inventory.Inventory, error) {
	devs, err := c.InventoryDevices()
	if err != nil {
		return nil, err
	}
	return inventory.New(c.InventorySegments(), devs)
}
