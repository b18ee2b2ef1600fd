package system_test

import (
	"crypto/tls"
	"crypto/x509"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/raftlite/raftlite/internal/testpki"
)

// basicAuth adds credentials to every request.
type basicAuth struct {
	user, pass string
	base       http.RoundTripper
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.pass)
	return b.base.RoundTrip(r)
}

// secureClient trusts the CA, presents the certificate, and sends the credentials.
func secureClient(t *testing.T, pki testpki.Files, user, pass string) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(pki.CA)
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(pki.Cert, pki.Key)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	return &http.Client{Timeout: 30 * time.Second, Transport: basicAuth{user, pass, tr}}
}

// A 3-node cluster with HTTPS and node-to-node TLS (both mutual) and a credentials file: it forms, replicates
// and serves; the shell works over HTTPS with credentials; a leader checks forwarded credentials again; a
// node without a trusted certificate, or without join credentials, cannot join.
func TestSecuredCluster(t *testing.T) {
	dir := t.TempDir()
	ca, err := testpki.NewCA("raftlite test CA")
	if err != nil {
		t.Fatal(err)
	}
	pki, err := ca.WriteFiles(dir, "node", "raftlite-node", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	readerHash, _ := bcrypt.GenerateFromPassword([]byte("reader-pw"), bcrypt.MinCost)
	writeAuth := func(name string, readerPerms string) string {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(`[
			{"username": "admin", "password": "secret", "perms": ["all"]},
			{"username": "joiner", "password": "join-pw", "perms": ["join"]},
			{"username": "reader", "password": "`+string(readerHash)+`", "perms": [`+readerPerms+`]},
			{"username": "*", "perms": ["ready"]}
		]`), 0o600)
		return path
	}
	strict, loose := writeAuth("auth.json", `"query"`), writeAuth("auth-loose.json", `"query", "execute"`)
	tlsFlags := []string{"-http-cert", pki.Cert, "-http-key", pki.Key, "-http-ca-cert", pki.CA, "-http-verify-client",
		"-node-cert", pki.Cert, "-node-key", pki.Key, "-node-ca-cert", pki.CA, "-node-verify-client"}
	secure := func(id, authFile string, extra ...string) *node {
		n := newNode(t, id, append(append([]string{"-auth", authFile, "-join-as", "joiner"}, tlsFlags...), extra...)...)
		n.scheme, n.hc = "https", secureClient(t, pki, "admin", "secret")
		return n
	}
	n1 := secure("n1", strict).start()
	waitLeader(t, n1)
	// The followers' credentials files let the reader write; the leader's does not.
	n2 := secure("n2", loose, "-join", "https://"+n1.httpAddr).start()
	n3 := secure("n3", loose, "-join", n1.raftAddr).start()
	nodes := []*node{n1, n2, n3}
	waitVoters(t, nodes, 3)
	if !n1.isLeader() {
		if code, _, err := n1.post("/leader?wait", map[string]string{"id": "n1"}); err != nil || code != 200 {
			t.Fatalf("hand leadership to n1: %d %v", code, err)
		}
	}

	n2.mustExecute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	n3.mustExecute([]any{"INSERT INTO t(v) VALUES (?)", "over TLS"})
	for _, n := range nodes {
		r, err := n.query("SELECT v FROM t", "linearizable")
		if err != nil || len(r.Values) != 1 {
			t.Fatalf("%s: %v %v", n.id, r, err)
		}
	}

	// The reader may query anywhere (its password is stored as a bcrypt hash), at every level.
	reader := secureClient(t, pki, "reader", "reader-pw")
	for _, n := range nodes {
		for _, level := range []string{"weak", "linearizable", "strong"} {
			resp, err := reader.Get(n.url("/db/query?level=" + level + "&q=SELECT+count(*)+FROM+t"))
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("reader at %s on %s: %v %v", level, n.id, resp, err)
			}
			resp.Body.Close()
		}
	}
	// A follower whose file allows the reader to write passes the write on; the leader refuses it.
	resp, err := reader.Post(n2.url("/db/execute"), "application/json", strings.NewReader(`["INSERT INTO t(v) VALUES ('sneaky')"]`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a write the leader's file forbids got %d through a follower, want 401", resp.StatusCode)
	}
	if c, _ := n1.count("t"); c != 1 {
		t.Fatalf("the refused write was applied: %d rows", c)
	}

	t.Run("shell over HTTPS", func(t *testing.T) {
		host, port, _ := strings.Cut(n3.httpAddr, ":")
		base := []string{"-s", "https", "-H", host, "-p", port, "-c", pki.CA, "-d", pki.Cert, "-k", pki.Key}
		out, errOut, code := shellRun(t, "", nil, append(base, "-u", "admin:secret", "SELECT v FROM t")...)
		if code != 0 || !strings.Contains(out, "| over TLS |") {
			t.Fatalf("admin: exit %d\n%s%s", code, out, errOut)
		}
		out, errOut, code = shellRun(t, "SELECT count(*) AS n FROM t;\nINSERT INTO t(v) VALUES ('no');\n", nil, append(base, "-u", "reader:reader-pw")...)
		if code != 1 || !strings.Contains(out, "| 1 |") || !strings.Contains(errOut, "unauthorized") {
			t.Fatalf("reader: exit %d\n%s%s", code, out, errOut)
		}
		if _, errOut, code = shellRun(t, "", nil, append(base, "-u", "admin:wrong", "SELECT 1")...); code != 1 || !strings.Contains(errOut, "unauthorized") {
			t.Fatalf("wrong password: exit %d, %s", code, errOut)
		}
		// Without the CA the server is not trusted; without a client certificate the server hangs up.
		if _, errOut, code = shellRun(t, "", nil, "-s", "https", "-H", host, "-p", port, "-u", "admin:secret", "SELECT 1"); code != 1 || !strings.Contains(errOut, "certificate") {
			t.Fatalf("untrusted server: exit %d, %s", code, errOut)
		}
		if _, errOut, code = shellRun(t, "", nil, "-s", "https", "-H", host, "-p", port, "-c", pki.CA, "-u", "admin:secret", "SELECT 1"); code != 1 {
			t.Fatalf("no client certificate: exit %d, %s", code, errOut)
		}
	})

	t.Run("plain HTTP to the HTTPS port", func(t *testing.T) {
		resp, err := client.Get("http://" + n1.httpAddr + "/status")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("plain HTTP got %d", resp.StatusCode)
			}
		}
	})

	t.Run("untrusted node cannot join", func(t *testing.T) {
		other, _ := testpki.NewCA("another CA")
		bad, _ := other.WriteFiles(t.TempDir(), "bad", "raftlite-node", "127.0.0.1")
		n := newNode(t, "n4", "-auth", strict, "-join-as", "joiner", "-join", n1.raftAddr, "-join-attempts", "3",
			"-http-cert", bad.Cert, "-http-key", bad.Key, "-node-cert", bad.Cert, "-node-key", bad.Key, "-node-ca-cert", bad.CA)
		joinFails(t, n, "certificate")
	})

	t.Run("node whose user may not join is told so", func(t *testing.T) {
		// The joining node's file holds the reader's password in plain text; the leader's file says the
		// reader may only query.
		own := filepath.Join(t.TempDir(), "auth.json")
		os.WriteFile(own, []byte(`[{"username": "reader", "password": "reader-pw", "perms": ["all"]}]`), 0o600)
		n := newNode(t, "n6", append([]string{"-auth", own, "-join-as", "reader", "-join", n1.raftAddr, "-join-attempts", "50"}, tlsFlags...)...)
		start := time.Now()
		joinFails(t, n, "reader may not join (give -join-as a user of the -auth file with the")
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("a join refused for its credentials was retried for %s", d)
		}
	})

	t.Run("node without join credentials cannot join", func(t *testing.T) {
		n := newNode(t, "n5", append([]string{"-auth", strict, "-join", n1.raftAddr, "-join-attempts", "3"}, tlsFlags...)...)
		joinFails(t, n, "unauthorized")
	})
	waitVoters(t, nodes, 3)

	t.Run("no credentials in the logs", func(t *testing.T) {
		for _, n := range nodes {
			b, _ := os.ReadFile(n.logPath)
			for _, secret := range []string{"secret", "join-pw", "reader-pw", string(readerHash)} {
				if strings.Contains(string(b), secret) {
					t.Errorf("the log of %s contains %q", n.id, secret)
				}
			}
		}
	})

	t.Run("files readable by the owner only", func(t *testing.T) {
		filepath.WalkDir(n1.dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, _ := d.Info()
			if info.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s has mode %v", path, info.Mode().Perm())
			}
			return nil
		})
	})
}

// joinFails runs a node that must fail to join, and checks its log names the reason.
func joinFails(t *testing.T, n *node, reason string) {
	t.Helper()
	cmd := n.command()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("%s joined a cluster it should not have:\n%s", n.id, out)
	}
	if !strings.Contains(string(out), reason) {
		t.Fatalf("%s failed to join, but its log does not say %q:\n%s", n.id, reason, out)
	}
}

// Node TLS without -node-ca-cert verifies peers against the system's roots (SSL_CERT_FILE points them at
// the test CA here), as rqlited does; a node whose certificate those roots do not trust is kept out, and
// both sides say why.
func TestNodeTLSWithSystemRoots(t *testing.T) {
	dir := t.TempDir()
	ca, err := testpki.NewCA("raftlite system roots CA")
	if err != nil {
		t.Fatal(err)
	}
	good, err := ca.WriteFiles(dir, "node", "raftlite-node", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := testpki.NewCA("an untrusted CA")
	bad, err := other.WriteFiles(t.TempDir(), "bad", "raftlite-node", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tlsNode := func(id string, files testpki.Files, roots string, extra ...string) *node {
		n := newNode(t, id, append([]string{"-node-cert", files.Cert, "-node-key", files.Key}, extra...)...)
		n.env = []string{"SSL_CERT_FILE=" + roots}
		return n
	}
	n1 := tlsNode("n1", good, good.CA).start()
	waitLeader(t, n1)
	n2 := tlsNode("n2", good, good.CA, "-join", n1.raftAddr).start()
	waitVoters(t, []*node{n1, n2}, 2)
	n1.mustExecute("CREATE TABLE t (x)", "INSERT INTO t VALUES (1)")
	waitConverged(t, n1, n2)

	t.Run("peer the node cannot verify", func(t *testing.T) {
		n := tlsNode("n3", bad, bad.CA, "-join", n1.raftAddr, "-join-attempts", "2")
		joinFails(t, n, "cannot verify the certificate of the node at")
	})
	t.Run("node the cluster cannot verify", func(t *testing.T) {
		n := tlsNode("n4", bad, good.CA, "-join", n1.raftAddr, "-join-attempts", "2")
		joinFails(t, n, "refused this node's TLS certificate")
	})
	waitVoters(t, []*node{n1, n2}, 2)
}
