package syslog

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults of Config (SPEC §2 syslog).
const (
	DefaultMaxMessageBytes         = 64 << 10
	DefaultMaxConnections          = 4096
	DefaultMaxConnectionsPerSource = 200
	DefaultIdleTimeout             = 5 * time.Minute
	DefaultRateBurst               = 10000
	DefaultRateInterval            = 5 * time.Second
	DefaultMaxAge                  = 90 * 24 * time.Hour

	// HardFrameLimit is the largest octet count a TCP/TLS peer may announce
	// (when MaxMessageBytes is smaller). A frame between MaxMessageBytes and
	// this is read and cut; a larger count closes the connection, because no
	// real sender produces it and honouring it would let a peer pin us
	// reading garbage.
	HardFrameLimit = 1 << 20
)

// Config is the syslog input's configuration. The lead maps the YAML
// `syslog:` section and the --syslog-* flags onto it.
type Config struct {
	// Listen addresses (host:port). Empty means that listener is off.
	UDPAddr, TCPAddr, TLSAddr string

	// Timezone applies to RFC 3164 timestamps, which carry none. nil = UTC.
	Timezone *time.Location

	// MaxMessageBytes cuts longer messages (they are kept, marked truncated).
	MaxMessageBytes int
	// MaxConnections bounds open TCP+TLS connections in total, and
	// MaxConnectionsPerSource those from one address; over the limit a new
	// connection is closed at once.
	MaxConnections, MaxConnectionsPerSource int
	// IdleTimeout closes a TCP/TLS connection that sent nothing for this long.
	IdleTimeout time.Duration

	// RateBurst messages per RateInterval per source address (token bucket).
	// Over it UDP datagrams are dropped and counted; TCP/TLS readers are
	// slowed down instead, so the sender's TCP window pushes back and nothing
	// is lost. Like every field, 0 takes the default; a negative RateBurst
	// disables the limit.
	RateBurst    int
	RateInterval time.Duration

	// TLS configures the TLSAddr listener (RFC 5425).
	TLS TLSConfig

	// MaxAge is the retention: a device timestamp older than this (or more
	// than 24 h in the future) is replaced by the received time.
	MaxAge time.Duration
}

// TLSConfig is the syslog-over-TLS server configuration.
type TLSConfig struct {
	// Cert and Key are PEM files of the server certificate and key.
	Cert, Key string
	// ClientCA, when set, is a PEM bundle; clients must then present a
	// certificate signed by it.
	ClientCA string
	// AllowedPeers, when set, limits clients to these certificate names
	// (subject CN or DNS SAN, needs ClientCA so the name is vouched for) or
	// fingerprints "sha256:<hex>" of the client's leaf certificate (works
	// with self-signed client certificates, without ClientCA).
	AllowedPeers []string
}

// DefaultConfig returns the SPEC defaults with every listener off.
func DefaultConfig() Config {
	return Config{
		Timezone:                time.UTC,
		MaxMessageBytes:         DefaultMaxMessageBytes,
		MaxConnections:          DefaultMaxConnections,
		MaxConnectionsPerSource: DefaultMaxConnectionsPerSource,
		IdleTimeout:             DefaultIdleTimeout,
		RateBurst:               DefaultRateBurst,
		RateInterval:            DefaultRateInterval,
		MaxAge:                  DefaultMaxAge,
	}
}

// validate checks cfg and fills zero values with defaults.
func (cfg *Config) validate() error {
	if cfg.Timezone == nil {
		cfg.Timezone = time.UTC
	}
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.MaxMessageBytes < 480 { // RFC 5424 §6.1: receivers must take 480 octets
		return fmt.Errorf("max_message_bytes %d: must be at least 480", cfg.MaxMessageBytes)
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.MaxConnectionsPerSource == 0 {
		cfg.MaxConnectionsPerSource = DefaultMaxConnectionsPerSource
	}
	if cfg.MaxConnections < 0 || cfg.MaxConnectionsPerSource < 0 {
		return errors.New("max_connections: must not be negative")
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.IdleTimeout < 0 {
		return fmt.Errorf("idle_timeout %s: must be positive", cfg.IdleTimeout)
	}
	if cfg.RateBurst == 0 {
		cfg.RateBurst = DefaultRateBurst
	}
	if cfg.RateInterval == 0 {
		cfg.RateInterval = DefaultRateInterval
	}
	if cfg.RateBurst > 0 && cfg.RateInterval < 0 {
		return fmt.Errorf("rate_limit interval %s: must be positive", cfg.RateInterval)
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxAge < 0 {
		return fmt.Errorf("max age %s: must be positive", cfg.MaxAge)
	}
	if cfg.TLSAddr != "" {
		if cfg.TLS.Cert == "" || cfg.TLS.Key == "" {
			return errors.New("tls: cert and key are required for the TLS listener")
		}
		for _, p := range cfg.TLS.AllowedPeers {
			if fp, ok := strings.CutPrefix(p, "sha256:"); ok {
				if _, err := parseFingerprint(fp); err != nil {
					return fmt.Errorf("tls allowed_peers %q: %w", p, err)
				}
				continue
			}
			if cfg.TLS.ClientCA == "" {
				// Without a CA anyone can make a certificate with that name.
				return fmt.Errorf("tls allowed_peers %q: a name needs client_ca (or use sha256:<fingerprint>)", p)
			}
		}
	}
	return nil
}
