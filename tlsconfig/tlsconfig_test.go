package tlsconfig

import (
	"crypto/tls"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/raftlite/raftlite/internal/testpki"
)

// handshake runs one TLS handshake between a server and a client with these configurations and returns
// the client's error (or the server's, if only the server refused) and the server's certificate CN.
func handshake(t *testing.T, server, client *tls.Config) (string, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serverErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serverErr <- err
			return
		}
		defer c.Close()
		err = c.(*tls.Conn).Handshake()
		if err == nil {
			// A client certificate is checked after the client finished: read to learn the outcome.
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			c.Read(make([]byte, 1))
		}
		serverErr <- err
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err != nil {
		<-serverErr
		return "", err
	}
	defer conn.Close()
	// TLS 1.3: a refused client certificate shows on the client's first read.
	conn.SetReadDeadline(time.Now().Add(time.Second))
	_, rerr := conn.Read(make([]byte, 1))
	if serr := <-serverErr; serr != nil {
		return "", serr
	}
	if rerr != nil && !isTimeout(rerr) && !strings.Contains(rerr.Error(), "EOF") {
		return "", rerr
	}
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func pki(t *testing.T) (ca, other *testpki.CA, dir string) {
	t.Helper()
	var err error
	if ca, err = testpki.NewCA("raftlite test CA"); err != nil {
		t.Fatal(err)
	}
	if other, err = testpki.NewCA("another CA"); err != nil {
		t.Fatal(err)
	}
	return ca, other, t.TempDir()
}

func check[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestServerAndClientVerification(t *testing.T) {
	ca, other, dir := pki(t)
	srv := check[testpki.Files](t)(ca.WriteFiles(dir, "server", "node1", "127.0.0.1"))
	cli := check[testpki.Files](t)(ca.WriteFiles(dir, "client", "alice", "127.0.0.1"))
	stranger := check[testpki.Files](t)(other.WriteFiles(dir, "stranger", "mallory", "127.0.0.1"))
	wrongName := check[testpki.Files](t)(ca.WriteFiles(dir, "wrongname", "node9", "db.example.com"))

	plain := check[*tls.Config](t)(Server(Options{CertFile: srv.Cert, KeyFile: srv.Key}))
	mutual := check[*tls.Config](t)(Server(Options{CertFile: srv.Cert, KeyFile: srv.Key, CAFile: srv.CA, VerifyClient: true}))
	mutualCN := check[*tls.Config](t)(Server(Options{CertFile: srv.Cert, KeyFile: srv.Key, CAFile: srv.CA, VerifyClient: true, CommonName: "alice"}))

	for _, tc := range []struct {
		name    string
		server  *tls.Config
		client  Options
		wantErr string
	}{
		{"trusted", plain, Options{CAFile: srv.CA}, ""},
		{"untrusted server", plain, Options{}, "certificate signed by unknown authority"},
		{"insecure client", plain, Options{NoVerify: true}, ""},
		{"mutual", mutual, Options{CAFile: srv.CA, CertFile: cli.Cert, KeyFile: cli.Key}, ""},
		{"mutual without a client certificate", mutual, Options{CAFile: srv.CA}, "certificate"},
		{"mutual with an untrusted client", mutual, Options{CAFile: srv.CA, CertFile: stranger.Cert, KeyFile: stranger.Key}, "certificate"},
		{"client common name", mutualCN, Options{CAFile: srv.CA, CertFile: cli.Cert, KeyFile: cli.Key}, ""},
		{"wrong client common name", mutualCN, Options{CAFile: srv.CA, CertFile: srv.Cert, KeyFile: srv.Key}, `common name is "node1", not "alice"`},
		{"server common name", plain, Options{CAFile: srv.CA, CommonName: "node1"}, ""},
		{"wrong server common name", plain, Options{CAFile: srv.CA, CommonName: "node2"}, `common name is "node1", not "node2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := check[*tls.Config](t)(Client(tc.client))
			_, err := handshake(t, tc.server, client)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("handshake failed: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("handshake error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}

	// A certificate for another name is refused unless the client expects that name.
	named := check[*tls.Config](t)(Server(Options{CertFile: wrongName.Cert, KeyFile: wrongName.Key}))
	if _, err := handshake(t, named, check[*tls.Config](t)(Client(Options{CAFile: srv.CA}))); err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("a certificate for db.example.com was accepted for 127.0.0.1: %v", err)
	}
	if _, err := handshake(t, named, check[*tls.Config](t)(Client(Options{CAFile: srv.CA, ServerName: "db.example.com"}))); err != nil {
		t.Fatalf("with ServerName db.example.com: %v", err)
	}
}

func TestOldTLSRefused(t *testing.T) {
	ca, _, dir := pki(t)
	srv := check[testpki.Files](t)(ca.WriteFiles(dir, "server", "node1", "127.0.0.1"))
	server := check[*tls.Config](t)(Server(Options{CertFile: srv.Cert, KeyFile: srv.Key}))
	client := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if _, err := handshake(t, server, client); err == nil {
		t.Fatal("a TLS 1.1 client was accepted")
	}
}

func TestCertificateReloaded(t *testing.T) {
	ca, _, dir := pki(t)
	srv := check[testpki.Files](t)(ca.WriteFiles(dir, "server", "before", "127.0.0.1"))
	server := check[*tls.Config](t)(Server(Options{CertFile: srv.Cert, KeyFile: srv.Key}))
	client := check[*tls.Config](t)(Client(Options{CAFile: srv.CA}))
	if cn := check[string](t)(handshake(t, server, client)); cn != "before" {
		t.Fatalf("served %q", cn)
	}
	// Replace both files; the modification time must differ from the first pair's.
	time.Sleep(1100 * time.Millisecond)
	cert, key := must2(t)(ca.Issue("after", "127.0.0.1"))
	os.WriteFile(srv.Cert, cert, 0o600)
	os.WriteFile(srv.Key, key, 0o600)
	if cn := check[string](t)(handshake(t, server, client)); cn != "after" {
		t.Fatalf("after replacing the files, served %q", cn)
	}
	// A broken pair (a key that does not match) is not taken up; the last good one stays.
	time.Sleep(1100 * time.Millisecond)
	_, otherKey := must2(t)(ca.Issue("x"))
	os.WriteFile(srv.Key, otherKey, 0o600)
	if cn := check[string](t)(handshake(t, server, client)); cn != "after" {
		t.Fatalf("with a mismatched key on disk, served %q", cn)
	}
}

func must2(t *testing.T) func(a, b []byte, err error) ([]byte, []byte) {
	return func(a, b []byte, err error) ([]byte, []byte) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

func TestOptionErrors(t *testing.T) {
	if _, err := Server(Options{CertFile: "x"}); err == nil {
		t.Error("a server without a key was configured")
	}
	if _, err := Server(Options{CertFile: "/nonexistent.crt", KeyFile: "/nonexistent.key"}); err == nil {
		t.Error("missing files were accepted")
	}
	if _, err := Client(Options{CertFile: "x"}); err == nil {
		t.Error("a client certificate without a key was accepted")
	}
	if _, err := Client(Options{CAFile: "/nonexistent"}); err == nil {
		t.Error("a missing CA file was accepted")
	}
}
