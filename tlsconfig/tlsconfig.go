package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Options describe one side's certificates and what it checks of the other side.
type Options struct {
	CertFile, KeyFile string // this side's certificate and key (PEM); reloaded when they change
	CAFile            string // CA that signs the other side's certificates; empty: the system roots
	// VerifyClient (servers) requires and verifies a client certificate.
	VerifyClient bool
	// CommonName, if set, is required as the common name of the other side's certificate.
	CommonName string
	// NoVerify (clients) accepts any server certificate.
	NoVerify bool
	// ServerName (clients) is the name expected in server certificates instead of the dialled host.
	ServerName string
}

// Server returns the configuration of a TLS listener.
func Server(o Options) (*tls.Config, error) {
	if o.CertFile == "" || o.KeyFile == "" {
		return nil, errors.New("a TLS server needs both a certificate and a key")
	}
	r, err := newReloader(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.get() },
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if o.CAFile != "" {
		pool, err := loadPool(o.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
	}
	if o.VerifyClient {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	} else if o.CommonName != "" {
		return nil, errors.New("checking the client's common name needs client verification")
	}
	if o.CommonName != "" {
		cfg.VerifyConnection = requireCommonName(o.CommonName, "client")
	}
	return cfg, nil
}

// Client returns the configuration of a TLS dialer; a certificate, if given, is presented to servers that
// ask for one.
func Client(o Options) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.NoVerify, ServerName: o.ServerName}
	if o.CAFile != "" {
		pool, err := loadPool(o.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("a client certificate needs both the certificate and its key")
	}
	if o.CertFile != "" {
		r, err := newReloader(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return r.get() }
	}
	if o.CommonName != "" {
		cfg.VerifyConnection = requireCommonName(o.CommonName, "server")
	}
	return cfg, nil
}

func requireCommonName(cn, side string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("the %s presented no certificate (common name %q required)", side, cn)
		}
		if got := cs.PeerCertificates[0].Subject.CommonName; got != cn {
			return fmt.Errorf("the %s certificate's common name is %q, not %q", side, got, cn)
		}
		return nil
	}
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA certificate %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// reloader serves a certificate pair, loading it again when either file's modification time changes
// (checked at most once a second). If a new pair fails to load (say, the key is written after the
// certificate), the previous one stays in use until a consistent pair is in place.
type reloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]time.Time
	checked time.Time
}

func newReloader(certFile, keyFile string) (*reloader, error) {
	r := &reloader{certFile: certFile, keyFile: keyFile}
	stamp, err := r.stamps()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s and key %s: %w", certFile, keyFile, err)
	}
	r.cert, r.stamp, r.checked = &cert, stamp, time.Now()
	return r, nil
}

func (r *reloader) stamps() ([2]time.Time, error) {
	var out [2]time.Time
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return out, fmt.Errorf("certificate file: %w", err)
		}
		out[i] = fi.ModTime()
	}
	return out, nil
}

func (r *reloader) get() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < time.Second {
		return r.cert, nil
	}
	r.checked = time.Now()
	stamp, err := r.stamps()
	if err != nil || stamp == r.stamp {
		return r.cert, nil
	}
	if cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile); err == nil {
		r.cert, r.stamp = &cert, stamp
	}
	return r.cert, nil
}
