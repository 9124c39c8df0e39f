package syslog

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	tls  tls.Certificate
}

// newCert makes a certificate signed by parent (self-signed when nil).
func newCert(t *testing.T, cn string, parent *testCert, isCA bool) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	if !isCA {
		tmpl.DNSNames = []string{cn}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert: c, key: key, tls: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}}
}

func (c *testCert) write(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	kb, err := x509.MarshalECPrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCert(t, "segwatch test CA", nil, true)
	caFile, _ := ca.write(t, dir, "ca")
	server := newCert(t, "syslog.example.com", ca, false)
	serverCert, serverKey := server.write(t, dir, "server")
	camera := newCert(t, "cam-lobby-01.example.com", ca, false)
	other := newCert(t, "other.example.com", ca, false)
	selfSigned := newCert(t, "sensor-7", nil, false)
	strangerSelfSigned := newCert(t, "sensor-8", nil, false)
	fp := fmt.Sprintf("sha256:%x", sha256.Sum256(selfSigned.cert.Raw))

	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	type client struct {
		cert *testCert // nil: none
		ok   bool
	}
	for _, tc := range []struct {
		name     string
		clientCA string
		peers    []string
		clients  []client
	}{
		{"no client auth", "", nil, []client{{nil, true}, {camera, true}}},
		{"client CA", caFile, nil, []client{{camera, true}, {nil, false}, {selfSigned, false}}},
		{"allowed peer by name", caFile, []string{"CAM-lobby-01.example.com"}, []client{{camera, true}, {other, false}, {nil, false}}},
		{"allowed peer by fingerprint", "", []string{fp}, []client{{selfSigned, true}, {strangerSelfSigned, false}, {nil, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.TLSAddr = "127.0.0.1:0"
			cfg.TLS = TLSConfig{Cert: serverCert, Key: serverKey, ClientCA: tc.clientCA, AllowedPeers: tc.peers}
			h := start(t, cfg, 100, nil)
			want := 0
			refused := uint64(0)
			for i, cl := range tc.clients {
				conf := &tls.Config{RootCAs: roots, ServerName: "syslog.example.com"}
				if cl.cert != nil {
					conf.Certificates = []tls.Certificate{cl.cert.tls}
				}
				msg := fmt.Sprintf("client %d", i)
				c, err := tls.Dial("tcp", h.r.Addrs().TLS.String(), conf)
				if err == nil {
					defer c.Close()
					_, err = c.Write([]byte(octet("<14>1 - cam app - - - " + msg)))
					if err == nil && !cl.ok {
						// TLS 1.3 clients finish before the server has
						// checked their certificate; the refusal shows
						// as the server closing the connection.
						c.SetReadDeadline(time.Now().Add(waitFor))
						_, err = c.Read(make([]byte, 1))
					}
				}
				if cl.ok {
					want++
					if m := byMessage(h.collect(want)); m[msg].Message == "" {
						t.Errorf("client %d: message missing: %v (dial/write err %v)", i, m, err)
					}
				} else {
					refused++
					if err == nil {
						t.Errorf("client %d was not refused", i)
					}
					eventually(t, "the refusal to be counted", func() bool {
						return h.counter("segwatch_syslog_tls_handshake_errors_total") == refused
					})
				}
			}
			h.stop()
			if got := h.collect(want); len(got) != want {
				t.Errorf("%d events, want %d", len(got), want)
			}
			if n := h.counter(`segwatch_syslog_messages_received_total{transport="tls"}`); n != uint64(want) {
				t.Errorf("received tls = %d, want %d", n, want)
			}
		})
	}
}
