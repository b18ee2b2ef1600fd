package testservers

import (
	"path/filepath"
	"testing"
)

// Etcd is a running single-member etcd (Debian's etcd-server, which scripts/test-deps.sh installs).
type Etcd struct {
	process
	Endpoint string // http://127.0.0.1:port, the client URL
}

// StartEtcd starts etcd with an empty data directory on free loopback ports.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	bin := tool(t, "etcd")
	dir := t.TempDir()
	client, peer := FreeAddr(t), FreeAddr(t)
	e := &Etcd{Endpoint: "http://" + client}
	e.process = process{t: t, addr: client, log: filepath.Join(dir, "etcd.log"), argv: []string{bin,
		"--name", "test", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", e.Endpoint, "--advertise-client-urls", e.Endpoint,
		"--listen-peer-urls", "http://" + peer, "--initial-advertise-peer-urls", "http://" + peer,
		"--initial-cluster", "test=http://" + peer, "--log-level", "warn"}}
	e.Start()
	t.Cleanup(e.Stop)
	return e
}
