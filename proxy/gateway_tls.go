package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/remora-mesh/remora/config"
)

// serverTLS is one gateway server's TLS termination: its settings and
// certificates, reloaded when their files change. It is safe for
// concurrent use.
type serverTLS struct {
	mode     config.TLSServerMode
	certs    *CertReloader
	min, max uint16
	ciphers  []uint16
	sans     []string
	alpn     []string

	mu  sync.Mutex
	gen *CertSet    // the set cfg was built from
	cfg *tls.Config // immutable once built
}

// newServerTLS checks and loads a terminating server's settings (SIMPLE,
// MUTUAL, OPTIONAL_MUTUAL). alpn are the protocols offered (h2 and
// http/1.1 for HTTPS, none for TLS). warn gets ignored cipher names.
func newServerTLS(ts *config.ServerTLSSettings, alpn []string, warn func(string)) (*serverTLS, error) {
	s := &serverTLS{mode: ts.Mode, sans: ts.SubjectAltNames, alpn: alpn}
	if s.mode == "" {
		s.mode = "SIMPLE"
	}
	files := CertFiles{Cert: ts.ServerCertificate, Key: ts.PrivateKey}
	switch s.mode {
	case "SIMPLE":
	case "MUTUAL", "OPTIONAL_MUTUAL":
		if ts.CACertificates == "" {
			return nil, fmt.Errorf("tls mode %s: caCertificates is required", s.mode)
		}
		files.CA = ts.CACertificates
	default:
		return nil, fmt.Errorf("tls mode %s is not supported by remora", s.mode)
	}
	if files.Cert == "" || files.Key == "" {
		if ts.CredentialName != "" || len(ts.CredentialNames) > 0 {
			return nil, errors.New("tls credentialName (Kubernetes secrets) is not supported: use serverCertificate and privateKey files")
		}
		return nil, fmt.Errorf("tls mode %s: serverCertificate and privateKey are required", s.mode)
	}
	var err error
	if s.min, err = tlsVersion(ts.MinProtocolVersion, tls.VersionTLS12); err != nil {
		return nil, err
	}
	if s.max, err = tlsVersion(ts.MaxProtocolVersion, tls.VersionTLS13); err != nil {
		return nil, err
	}
	if s.min > s.max {
		return nil, fmt.Errorf("tls minProtocolVersion %s is above maxProtocolVersion %s", ts.MinProtocolVersion, ts.MaxProtocolVersion)
	}
	s.ciphers = cipherSuites(ts.CipherSuites, warn)
	if s.certs, err = NewCertReloader(files); err != nil {
		return nil, err
	}
	return s, nil
}

// config returns the server config for one new connection, built from
// the current certificates.
func (s *serverTLS) config() *tls.Config {
	set := s.certs.Current()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == set && s.cfg != nil {
		return s.cfg
	}
	cfg := &tls.Config{
		MinVersion:   s.min,
		MaxVersion:   s.max,
		CipherSuites: s.ciphers,
		NextProtos:   s.alpn,
		Certificates: []tls.Certificate{*set.Cert},
	}
	switch s.mode {
	case "MUTUAL":
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, set.CA
	case "OPTIONAL_MUTUAL":
		cfg.ClientAuth, cfg.ClientCAs = tls.VerifyClientCertIfGiven, set.CA
	}
	if len(s.sans) > 0 && cfg.ClientAuth != tls.NoClientCert {
		cfg.VerifyConnection = s.verifyClientSAN
	}
	s.gen, s.cfg = set, cfg
	return cfg
}

// verifyClientSAN checks that a client certificate, when one was sent,
// carries one of the server's subjectAltNames (DNS, URI, email or IP).
func (s *serverTLS) verifyClientSAN(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	leaf := cs.PeerCertificates[0]
	var names []string
	names = append(names, leaf.DNSNames...)
	names = append(names, leaf.EmailAddresses...)
	for _, u := range leaf.URIs {
		names = append(names, u.String())
	}
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	for _, san := range s.sans {
		if slices.Contains(names, san) {
			return nil
		}
	}
	return fmt.Errorf("tls: client certificate matches none of subjectAltNames %v", s.sans)
}

// tlsVersion maps Istio's TLSV1_x names to Go's; TLS_AUTO and empty mean
// def.
func tlsVersion(v config.TLSVersion, def uint16) (uint16, error) {
	switch v {
	case "", "TLS_AUTO":
		return def, nil
	case "TLSV1_0":
		return tls.VersionTLS10, nil
	case "TLSV1_1":
		return tls.VersionTLS11, nil
	case "TLSV1_2":
		return tls.VersionTLS12, nil
	case "TLSV1_3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("tls version %q: want TLS_AUTO or TLSV1_0..TLSV1_3", v)
}

// opensslCiphers maps the OpenSSL/BoringSSL names Envoy and Istio use to
// Go's cipher suites.
var opensslCiphers = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"AES128-GCM-SHA256":             tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"AES256-GCM-SHA384":             tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"AES128-SHA":                    tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"AES256-SHA":                    tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}

// cipherSuites resolves Envoy cipher names (OpenSSL style, or Go/IANA
// names; "[A|B]" groups flattened) for TLS 1.0–1.2. Unknown and
// duplicate names are skipped with a warning, as Istio does. Empty means
// Go's defaults.
func cipherSuites(names []string, warn func(string)) []uint16 {
	var out []uint16
	for _, n := range names {
		for _, name := range strings.Split(strings.Trim(n, "[]"), "|") {
			id, ok := cipherID(strings.TrimSpace(name))
			switch {
			case !ok:
				warn(fmt.Sprintf("tls cipherSuites: unknown cipher %q ignored", name))
			case slices.Contains(out, id):
				warn(fmt.Sprintf("tls cipherSuites: duplicate cipher %q ignored", name))
			default:
				out = append(out, id)
			}
		}
	}
	return out
}

func cipherID(name string) (uint16, bool) {
	if id, ok := opensslCiphers[name]; ok {
		return id, true
	}
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if cs.Name == name {
			return cs.ID, true
		}
	}
	return 0, false
}
