package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/remora-mesh/remora/config"
)

// tlsPolicy is a cluster's TLS origination (DestinationRule tls SIMPLE or
// MUTUAL), loaded once per snapshot.
type tlsPolicy struct {
	base *tls.Config
	// sni is the configured server name; empty means the request's host
	// (Envoy's auto_sni), or the service host for TCP.
	sni string
	// sans are the accepted subjectAltNames; when empty and sni is unset
	// the certificate must match the SNI (auto_san_validation).
	sans     []string
	insecure bool
	roots    *x509.CertPool // nil: system roots
	key      string         // the settings it was loaded from, to detect changes
}

// newTLSPolicy loads ts's files. DISABLE, ISTIO_MUTUAL (no Istio CA here)
// and an absent block mean plaintext. SIMPLE without caCertificates
// verifies against the system roots.
func newTLSPolicy(ts *config.ClientTLSSettings, h2 bool) (*tlsPolicy, error) {
	if ts == nil || (ts.Mode != "SIMPLE" && ts.Mode != "MUTUAL") {
		return nil, nil
	}
	p := &tlsPolicy{sni: ts.SNI, sans: ts.SubjectAltNames, insecure: ts.InsecureSkipVerify != nil && *ts.InsecureSkipVerify}
	p.key = fmt.Sprintf("%v|%s|%s|%s|%v|%s|%v|%v", ts.Mode, ts.ClientCertificate, ts.PrivateKey, ts.CACertificates, ts.SubjectAltNames, ts.SNI, p.insecure, h2)
	p.base = &tls.Config{MinVersion: tls.VersionTLS12}
	if h2 {
		p.base.NextProtos = []string{"h2"}
	}
	if ts.CACertificates != "" {
		pem, err := os.ReadFile(ts.CACertificates)
		if err != nil {
			return nil, fmt.Errorf("tls caCertificates: %w", err)
		}
		p.roots = x509.NewCertPool()
		if !p.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls caCertificates %s: no PEM certificate", ts.CACertificates)
		}
	}
	if ts.Mode == "MUTUAL" {
		if ts.ClientCertificate == "" || ts.PrivateKey == "" {
			return nil, errors.New("tls MUTUAL: clientCertificate and privateKey are required")
		}
		cert, err := tls.LoadX509KeyPair(ts.ClientCertificate, ts.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		p.base.Certificates = []tls.Certificate{cert}
	}
	return p, nil
}

// config returns the client config for one connection with server name
// sni (the configured one wins).
func (p *tlsPolicy) config(sni string) *tls.Config {
	cfg := p.base.Clone()
	if p.sni != "" {
		sni = p.sni
	}
	cfg.ServerName = sni
	cfg.RootCAs = p.roots
	if p.insecure {
		cfg.InsecureSkipVerify = true
		return cfg
	}
	if len(p.sans) == 0 && p.sni == "" && sni != "" {
		return cfg // standard verification: chain and host name = SNI
	}
	// Verify the chain ourselves: against subjectAltNames if set, else
	// the chain only (an explicit sni turns off auto SAN validation).
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error { return p.verify(cs) }
	return cfg
}

// verify checks the peer chain against the roots and, if set, that the
// leaf carries one of the subjectAltNames (DNS or URI).
func (p *tlsPolicy) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: no server certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.roots, Intermediates: inter}); err != nil {
		return err
	}
	if len(p.sans) == 0 {
		return nil
	}
	for _, san := range p.sans {
		if slices.Contains(leaf.DNSNames, san) || leaf.VerifyHostname(san) == nil {
			return nil
		}
		for _, u := range leaf.URIs {
			if u.String() == san {
				return nil
			}
		}
	}
	return fmt.Errorf("tls: server certificate matches none of subjectAltNames %v", p.sans)
}

// tlsKey identifies a TLS policy's settings; "" is plaintext.
func tlsKey(p *tlsPolicy) string {
	if p == nil {
		return ""
	}
	return p.key
}
