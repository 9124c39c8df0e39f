package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/segwatch/segwatch/config"
)

// serveOptions are the flags of `segwatch serve`.
type serveOptions struct {
	configPath string
	data       string
	syslogUDP  string
	syslogTCP  string
	syslogTLS  string
	netflow    string
	http       string
	logLevel   string
}

func serveCmd(ctx context.Context, args []string, stderr io.Writer) error {
	var o serveOptions
	fs := newFlags("serve", stderr)
	fs.StringVar(&o.configPath, "config", "", "YAML config file (default: the embedded example site)")
	fs.StringVar(&o.data, "data", "./data", "data directory (index, database)")
	fs.StringVar(&o.syslogUDP, "syslog-udp", ":5514", "syslog UDP address, or off")
	fs.StringVar(&o.syslogTCP, "syslog-tcp", ":5514", "syslog TCP address (octet counting or LF framing), or off")
	fs.StringVar(&o.syslogTLS, "syslog-tls", "off", "syslog TLS address (RFC 5425, usually :6514), or off; needs syslog.tls in the config")
	fs.StringVar(&o.netflow, "netflow", ":2055", "NetFlow v5/v9/IPFIX UDP address, or off")
	fs.StringVar(&o.http, "http", ":8080", "HTTP address of the UI and API, or off")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return usagef("serve: --log-level %q: want debug, info, warn or error", o.logLevel)
	}
	for _, a := range []struct{ flag, addr string }{
		{"syslog-udp", o.syslogUDP}, {"syslog-tcp", o.syslogTCP}, {"syslog-tls", o.syslogTLS},
		{"netflow", o.netflow}, {"http", o.http},
	} {
		if err := checkAddr(a.addr); err != nil {
			return usagef("serve: --%s: %v", a.flag, err)
		}
	}
	cfg, err := loadConfig(o.configPath)
	if err != nil {
		return usageError{err}
	}
	if o.syslogTLS != "off" && cfg.Syslog.TLS.Cert == "" {
		return usagef("serve: --syslog-tls needs syslog.tls.cert and syslog.tls.key in the config")
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return serve(ctx, o, cfg, logger)
}

// checkAddr validates host:port syntax so that a typo is a usage error
// rather than a bind failure deep in a component.
func checkAddr(addr string) error {
	if addr == "off" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port or off", addr)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q: bad host", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}

// off maps the flag value "off" to the empty address components use for
// "disabled".
func off(addr string) string {
	if addr == "off" {
		return ""
	}
	return addr
}

var _ = config.Default
