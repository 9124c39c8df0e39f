package syslog

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// buildTLS loads the certificates of c and returns the server TLS config.
// Client certificates are required when ClientCA or AllowedPeers is set:
// with ClientCA they must chain to it; with fingerprints only, any
// (self-signed) certificate is accepted by the handshake and then matched
// against the list by checkPeer.
func buildTLS(c TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("load tls cert/key: %w", err)
	}
	conf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	switch {
	case c.ClientCA != "":
		pem, err := os.ReadFile(c.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("read tls client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read tls client_ca %s: no PEM certificate in it", c.ClientCA)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	case len(c.AllowedPeers) > 0:
		conf.ClientAuth = tls.RequireAnyClientCert
	}
	return conf, nil
}

// peerMatcher checks a verified connection's client certificate against
// AllowedPeers.
type peerMatcher struct {
	names        map[string]bool // lower-case
	fingerprints map[[sha256.Size]byte]bool
}

func newPeerMatcher(allowed []string) (*peerMatcher, error) {
	if len(allowed) == 0 {
		return nil, nil
	}
	m := &peerMatcher{names: map[string]bool{}, fingerprints: map[[sha256.Size]byte]bool{}}
	for _, a := range allowed {
		if fp, ok := strings.CutPrefix(a, "sha256:"); ok {
			sum, err := parseFingerprint(fp)
			if err != nil {
				return nil, fmt.Errorf("tls allowed_peers %q: %w", a, err)
			}
			m.fingerprints[sum] = true
			continue
		}
		m.names[strings.ToLower(a)] = true
	}
	return m, nil
}

// allowed reports whether the leaf certificate of st is allowed, and the
// reason when it is not. Names count only for verified chains.
func (m *peerMatcher) allowed(st tls.ConnectionState) error {
	if m == nil {
		return nil
	}
	if len(st.PeerCertificates) == 0 {
		return errors.New("no client certificate")
	}
	leaf := st.PeerCertificates[0]
	if m.fingerprints[sha256.Sum256(leaf.Raw)] {
		return nil
	}
	if len(st.VerifiedChains) > 0 {
		if m.names[strings.ToLower(leaf.Subject.CommonName)] {
			return nil
		}
		for _, n := range leaf.DNSNames {
			if m.names[strings.ToLower(n)] {
				return nil
			}
		}
	}
	return fmt.Errorf("client certificate %q (sha256:%x) is not in allowed_peers", leaf.Subject.CommonName, sha256.Sum256(leaf.Raw))
}

// parseFingerprint reads a SHA-256 fingerprint in hex, with or without
// colons (both forms are what openssl and browsers print).
func parseFingerprint(s string) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	b, err := hex.DecodeString(strings.ReplaceAll(s, ":", ""))
	if err != nil {
		return out, fmt.Errorf("fingerprint: %w", err)
	}
	if len(b) != sha256.Size {
		return out, fmt.Errorf("fingerprint: %d bytes, want %d", len(b), sha256.Size)
	}
	copy(out[:], b)
	return out, nil
}
