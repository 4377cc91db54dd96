package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// CertFiles name the PEM files of one TLS identity: a certificate chain
// and its private key, and optionally a CA bundle that verifies peers.
type CertFiles struct {
	// Cert and Key are the certificate chain and private key; both empty
	// means no identity (a CA-only set).
	Cert, Key string
	// CA is the bundle that verifies client certificates; empty means
	// none.
	CA string
}

// CertSet is one loaded generation of a CertFiles. It is immutable.
type CertSet struct {
	// Cert is the identity; nil when CertFiles has no Cert.
	Cert *tls.Certificate
	// CA verifies peers; nil when CertFiles has no CA.
	CA *x509.CertPool
	// Loaded is when the files were read.
	Loaded time.Time
}

// fileStamp is what decides whether a file changed: its size, mtime and
// identity (a replaced file, or a ConfigMap/Secret symlink swap, is a new
// inode).
type fileStamp struct {
	size int64
	mod  time.Time
	info os.FileInfo
}

func (a fileStamp) same(b fileStamp) bool {
	if a.info == nil || b.info == nil {
		return a.info == nil && b.info == nil
	}
	return a.size == b.size && a.mod.Equal(b.mod) && os.SameFile(a.info, b.info)
}

func stampOf(path string) fileStamp {
	if path == "" {
		return fileStamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{size: fi.Size(), mod: fi.ModTime(), info: fi}
}

// CertReloader serves the current CertSet of its files and re-reads them
// when any of them changed on disk. The check is a stat of each file on
// every Current call (one per TLS handshake), so a replaced certificate is
// served to the next new connection; connections already established keep
// the certificate they were handshaken with. A change that does not load
// (a half-written file, a key that does not match) is reported and the
// last good set stays. It is safe for concurrent use.
type CertReloader struct {
	// Files are the files to load; they must not change after the first
	// Current.
	Files CertFiles
	// OnError, if set, learns each failed reload.
	OnError func(error)

	mu     sync.Mutex // serializes reloads
	stamps [3]fileStamp
	cur    atomic.Pointer[CertSet]
}

// NewCertReloader loads files once and returns their reloader; it fails
// when the first load does.
func NewCertReloader(files CertFiles) (*CertReloader, error) {
	r := &CertReloader{Files: files}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reloadLocked(r.stampAll()); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *CertReloader) stampAll() [3]fileStamp {
	return [3]fileStamp{stampOf(r.Files.Cert), stampOf(r.Files.Key), stampOf(r.Files.CA)}
}

func (r *CertReloader) unchanged(s [3]fileStamp) bool {
	for i := range s {
		if !s[i].same(r.stamps[i]) {
			return false
		}
	}
	return true
}

// Current returns the certificate set, reloading it first when a file
// changed since the last load. It never returns nil after
// NewCertReloader succeeded.
func (r *CertReloader) Current() *CertSet {
	s := r.stampAll()
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur := r.cur.Load(); cur != nil && r.unchanged(s) {
		return cur
	}
	if err := r.reloadLocked(s); err != nil && r.OnError != nil {
		r.OnError(err)
	}
	return r.cur.Load()
}

// reloadLocked reads the files; on success it publishes them with
// stamps s. A failed reload still records s, so a broken file is
// reported once, not on every handshake. Caller must hold r.mu.
func (r *CertReloader) reloadLocked(s [3]fileStamp) error {
	set, err := loadCertSet(r.Files)
	r.stamps = s
	if err != nil {
		return err
	}
	r.cur.Store(set)
	return nil
}

// loadCertSet reads files into a CertSet.
func loadCertSet(f CertFiles) (*CertSet, error) {
	set := &CertSet{Loaded: time.Now()}
	if f.Cert != "" || f.Key != "" {
		if f.Cert == "" || f.Key == "" {
			return nil, errors.New("tls: serverCertificate and privateKey are both required")
		}
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("tls certificate %s: %w", f.Cert, err)
		}
		set.Cert = &c
	}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("tls caCertificates: %w", err)
		}
		set.CA = x509.NewCertPool()
		if !set.CA.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls caCertificates %s: no PEM certificate", f.CA)
		}
	}
	return set, nil
}
