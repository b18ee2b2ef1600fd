package system_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlite/raftlite/internal/testservers"
)

// manifestArgs returns the raftlited arguments of the StatefulSet in deploy/kubernetes/raftlite.yaml.
func manifestArgs(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "deploy", "kubernetes", "raftlite.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var args []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "args:":
			in = true
		case in && strings.HasPrefix(line, "#"):
		case in && strings.HasPrefix(line, "- "):
			arg := strings.TrimPrefix(line, "- ")
			if len(arg) > 1 && arg[0] == '\'' && arg[len(arg)-1] == '\'' {
				arg = arg[1 : len(arg)-1]
			}
			args = append(args, arg)
		case in:
			in = false
		}
	}
	if len(args) == 0 {
		t.Fatal("no args: list in the StatefulSet")
	}
	return args
}

// podFlags turns the manifest's arguments into one pod's: Kubernetes' $(VAR) substitutions, the pod's
// own loopback address (127.0.0.N) for 0.0.0.0 and the pod IP, this test's DNS server added to the
// discovery configuration, and the data directory left to the harness.
func podFlags(t *testing.T, args []string, pod, ip, dnsServer string) []string {
	t.Helper()
	var out []string
	for _, a := range args[:len(args)-1] { // the last is the data directory
		a = strings.NewReplacer("$(POD_NAME)", pod, "$(POD_NAMESPACE)", "default", "$(POD_IP)", ip, "0.0.0.0", ip).Replace(a)
		if v, ok := strings.CutPrefix(a, "-disco-config="); ok {
			var cfg map[string]any
			if err := json.Unmarshal([]byte(v), &cfg); err != nil {
				t.Fatalf("the manifest's -disco-config is not JSON: %v", err)
			}
			cfg["server"] = dnsServer
			b, _ := json.Marshal(cfg)
			a = "-disco-config=" + string(b)
		}
		out = append(out, a)
	}
	return out
}

// loopbackPorts finds an HTTP and a Raft port free on 127.0.0.1 to 127.0.0.n, so that every "pod" uses
// the same ports on an address of its own, as pods do.
func loopbackPorts(t *testing.T, n int) (int, int) {
	t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		var ports []int
		var lns []net.Listener
		ok := true
		for p := 0; p < 2 && ok; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			lns = append(lns, ln)
			port := ln.Addr().(*net.TCPAddr).Port
			for i := 2; i <= n; i++ {
				l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", i, port))
				if err != nil {
					ok = false
					break
				}
				lns = append(lns, l2)
			}
			ports = append(ports, port)
		}
		for _, l := range lns {
			l.Close()
		}
		if ok {
			return ports[0], ports[1]
		}
	}
	t.Fatal("no ports free on every loopback address")
	return 0, 0
}

// pod makes a node that runs with the manifest's flags on 127.0.0.<i>.
func pod(t *testing.T, args []string, i, httpPort, raftPort int, dnsServer string) *node {
	ip := fmt.Sprintf("127.0.0.%d", i)
	name := fmt.Sprintf("raftlite-%d", i-1)
	n := newNode(t, name)
	n.httpAddr = fmt.Sprintf("%s:%d", ip, httpPort)
	n.raftAddr = fmt.Sprintf("%s:%d", ip, raftPort)
	// The manifest's bind addresses are 0.0.0.0:4001 and :4002; here each pod has its own address.
	flags := podFlags(t, args, name, ip, dnsServer)
	for k, f := range flags {
		flags[k] = strings.NewReplacer(":4001", ":"+strconv.Itoa(httpPort), ":4002", ":"+strconv.Itoa(raftPort)).Replace(f)
	}
	n.flags = flags
	return n
}

func startAll(nodes ...*node) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { n.start() })
	}
	wg.Wait()
}

// The Kubernetes manifest's flags, with DNS discovery through a real DNS server: three pods form one
// cluster although the name lists none of them at first and one comes up late; a fourth joins when it
// is added to the name; a restarted pod comes back; /status shows what discovery found.
func TestDiscoveryDNSWithManifestFlags(t *testing.T) {
	args := manifestArgs(t)
	dns := testservers.StartDNS(t)
	httpPort, raftPort := loopbackPorts(t, 4)
	name := "raftlite-internal.default.svc.cluster.local"
	var pods []*node
	for i := 1; i <= 4; i++ {
		pods = append(pods, pod(t, args, i, httpPort, raftPort, dns.Addr))
	}
	// Two pods start while the name does not exist yet (the Service's records come later).
	startAll(pods[0], pods[1])
	time.Sleep(time.Second)
	if pods[0].isLeader() || pods[1].isLeader() {
		t.Fatal("a cluster formed before three nodes were found")
	}
	dns.SetA(name, "127.0.0.1", "127.0.0.2")
	time.Sleep(2 * time.Second)
	if pods[0].isLeader() || pods[1].isLeader() {
		t.Fatal("a cluster formed with two of the three expected nodes")
	}
	// The third comes up late.
	dns.SetA(name, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	pods[2].start()
	three := pods[:3]
	waitVoters(t, three, 3)
	leader := waitLeader(t, three...)
	id := sameClusterID(t, three...)
	leader.mustExecute("CREATE TABLE t (x)", "INSERT INTO t VALUES (1)")

	st, _ := pods[0].status()["disco"].(map[string]any)
	if st["mode"] != "dns" || st["name"] != name || st["last_error"] != nil || len(st["last_addresses"].([]any)) == 0 {
		t.Errorf("/status disco: %v", st)
	}

	// A fourth pod: scaled up, added to the name, it joins the running cluster.
	dns.SetA(name, "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
	pods[3].start()
	waitVoters(t, pods, 4)
	if got := sameClusterID(t, pods...); got != id {
		t.Fatalf("the fourth node is in cluster %s, not %s", got, id)
	}
	waitConverged(t, pods...)

	// A pod restarted (same data) comes back into the cluster.
	pods[1].stop()
	pods[1].start()
	waitVoters(t, pods, 4)
	waitFor(t, "the restarted pod's data", 20*time.Second, func() bool { c, err := pods[1].count("t"); return err == nil && c == 1 })
}

// DNS SRV records: the targets' ports come from the records, so the nodes can share one address.
func TestDiscoveryDNSSRV(t *testing.T) {
	dns := testservers.StartDNS(t)
	var nodes []*node
	var targets []testservers.SRVTarget
	for i := 1; i <= 3; i++ {
		n := newNode(t, fmt.Sprintf("s%d", i))
		host := fmt.Sprintf("s%d.nodes.test", i)
		dns.SetA(host, "127.0.0.1")
		_, port, _ := net.SplitHostPort(n.raftAddr)
		p, _ := strconv.Atoi(port)
		targets = append(targets, testservers.SRVTarget{Host: host, Port: uint16(p)})
		nodes = append(nodes, n)
	}
	dns.SetSRV("raft", "cluster.test", targets...)
	cfg := fmt.Sprintf(`{"name":"cluster.test","service":"raft","server":%q}`, dns.Addr)
	for _, n := range nodes {
		n.flags = []string{"-disco-mode", "dns-srv", "-disco-config", cfg, "-bootstrap-expect", "3"}
	}
	startAll(nodes...)
	waitVoters(t, nodes, 3)
	sameClusterID(t, nodes...)
	st, _ := nodes[0].status()["disco"].(map[string]any)
	if st["mode"] != "dns-srv" || st["dns_name:"] != "_raft._tcp.cluster.test." {
		t.Errorf("/status disco: %v", st)
	}
}

// leaderKey reads the Raft address a leader key names.
func leaderKeyAddr(t *testing.T, v []byte) string {
	var s struct {
		ID      string `json:"id"`
		APIAddr string `json:"api_addr"`
		Addr    string `json:"addr"`
	}
	json.Unmarshal(v, &s)
	return s.Addr
}

// etcd (a real one): three nodes started together form one cluster, the first to claim the key
// bootstrapping it; the key follows the leader; a second cluster with another -disco-key shares the etcd.
func TestDiscoveryEtcd(t *testing.T) {
	etcd := testservers.StartEtcd(t)
	cfg := fmt.Sprintf(`{"endpoints":[%q]}`, etcd.Endpoint)
	mk := func(prefix, key string) []*node {
		var nodes []*node
		for i := 1; i <= 3; i++ {
			nodes = append(nodes, newNode(t, fmt.Sprintf("%s%d", prefix, i), "-disco-mode", "etcd-kv", "-disco-key", key, "-disco-config", cfg))
		}
		return nodes
	}
	a, b := mk("ea", "clusterA"), mk("eb", "clusterB")
	startAll(append(append([]*node{}, a...), b...)...)
	waitVoters(t, a, 3)
	waitVoters(t, b, 3)
	idA, idB := sameClusterID(t, a...), sameClusterID(t, b...)
	if idA == idB {
		t.Fatal("the two keys formed one cluster")
	}
	leader := waitLeader(t, a...)
	get := func(key string) string {
		v, _ := etcdGet(etcd.Endpoint, key)
		return leaderKeyAddr(t, v)
	}
	waitFor(t, "the key naming the leader", 20*time.Second, func() bool { return get("/clusterA/leader") == leader.raftAddr })
	// Leadership moves: the new leader rewrites the key.
	target := followers(leader, a)[0]
	if resp, body := do(t, client, "POST", leader.url("/leader?wait"), "application/json", `{"id":"`+target.id+`"}`); resp.StatusCode != 200 {
		t.Fatalf("stepdown: %d %s", resp.StatusCode, body)
	}
	newLeader := waitLeader(t, a...)
	waitFor(t, "the key following the leader", 20*time.Second, func() bool { return get("/clusterA/leader") == newLeader.raftAddr })
	if st, _ := newLeader.status()["disco"].(map[string]any); st["mode"] != "etcd-kv" || st["key"] != "/clusterA/leader" {
		t.Errorf("/status disco: %v", st)
	}
}

// Consul (a stand-in for its KV API; see internal/testservers): the service is down when the nodes
// start, and they form one cluster once it is up; a token is required.
func TestDiscoveryConsulDownAtFirst(t *testing.T) {
	consul := testservers.StartConsulKV(t, "tok")
	consul.SetDown(true)
	cfg := fmt.Sprintf(`{"address":%q,"token":"tok"}`, consul.Addr)
	var nodes []*node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, newNode(t, fmt.Sprintf("c%d", i), "-disco-mode", "consul-kv", "-disco-config", cfg))
	}
	startAll(nodes...)
	time.Sleep(2 * time.Second)
	for _, n := range nodes {
		if n.isLeader() {
			t.Fatal("a node formed a cluster while discovery was down")
		}
		if st, _ := n.status()["disco"].(map[string]any); st["last_error"] == nil {
			t.Errorf("%s: /status disco shows no error while Consul is down: %v", n.id, st)
		}
	}
	consul.SetDown(false)
	waitVoters(t, nodes, 3)
	sameClusterID(t, nodes...)
	leader := waitLeader(t, nodes...)
	waitFor(t, "the key naming the leader", 20*time.Second, func() bool {
		v, _ := consul.Get("rqlite/leader")
		return leaderKeyAddr(t, v) == leader.raftAddr
	})
}

func TestDiscoveryFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-disco-mode", "zookeeper", "d"}, "disco mode must be one of consul-kv, etcd-kv, dns, or dns-srv"},
		{[]string{"-disco-mode", "dns", "d"}, "bootstrap-expect value required when using dns with a voting node"},
		{[]string{"-disco-mode", "etcd-kv", "-bootstrap-expect", "3", "d"}, "bootstrapping not applicable when using etcd-kv"},
		{[]string{"-disco-mode", "consul-kv", "-join", "localhost:4002", "d"}, "disco mode cannot be used when also explicitly joining a cluster"},
		{[]string{"-disco-mode", "consul-kv", "-disco-config", `{"address":"http://c:8500"}`, "d"}, "address should not contain HTTP or HTTPS"},
		{[]string{"-disco-mode", "dns", "-bootstrap-expect", "3", "-disco-config", `{"name":`, "d"}, "error reading DNS configuration"},
	} {
		dir := t.TempDir()
		args := append([]string{"-http-addr", freePort(t), "-raft-addr", freePort(t)}, tc.args...)
		args[len(args)-1] = filepath.Join(dir, "data")
		out, err := exec.Command(raftlitedBin, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: %v, output lacks %q:\n%s", tc.args, err, tc.want, out)
		}
	}
}

// etcdGet reads a key through etcd's JSON gateway.
func etcdGet(endpoint, key string) ([]byte, error) {
	body := fmt.Sprintf(`{"key":%q}`, b64(key))
	resp, err := client.Post(endpoint+"/v3/kv/range", "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Kvs []struct {
			Value []byte `json:"value"`
		} `json:"kvs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Kvs) == 0 {
		return nil, err
	}
	return out.Kvs[0].Value, nil
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// Reaping, as the Kubernetes manifest uses it for scaling down: a pod gone for good (scaled down) is
// removed by the leader after -raft-reap-node-timeout; a pod that comes back after being reaped, with its
// data, rejoins through discovery.
func TestReapScaledDownAndRejoin(t *testing.T) {
	dns := testservers.StartDNS(t)
	httpPort, raftPort := loopbackPorts(t, 4)
	name := "raftlite-internal.default.svc.cluster.local"
	cfg := fmt.Sprintf(`{"name":%q,"server":%q}`, name, dns.Addr)
	var pods []*node
	for i := 1; i <= 4; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i)
		n := newNode(t, fmt.Sprintf("raftlite-%d", i-1), "-disco-mode", "dns", "-disco-config", cfg, "-bootstrap-expect", "3",
			"-raft-reap-node-timeout", "5s")
		n.httpAddr, n.raftAddr = fmt.Sprintf("%s:%d", ip, httpPort), fmt.Sprintf("%s:%d", ip, raftPort)
		pods = append(pods, n)
	}
	dns.SetA(name, "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
	startAll(pods[:3]...)
	waitVoters(t, pods[:3], 3)
	pods[3].start()
	waitVoters(t, pods, 4)
	leader := waitLeader(t, pods...)
	leader.mustExecute("CREATE TABLE t (x)", "INSERT INTO t VALUES (1)")

	// Scaled down: the last pod is gone, and so is its record.
	dns.SetA(name, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	gone := pods[3]
	if gone == leader {
		// A pod scaled down by Kubernetes stops gracefully, and a leader hands leadership over as it does.
		gone.stop()
		leader = waitLeader(t, pods[:3]...)
	}
	gone.kill()
	waitFor(t, "the scaled-down pod reaped", 30*time.Second, func() bool {
		_, still := leader.nodes()[gone.id]
		return !still && len(leader.nodes()) == 3
	})
	waitVoters(t, pods[:3], 3)
	if b, _ := os.ReadFile(leader.logPath); !strings.Contains(string(b), "reaping a node not heard from") {
		t.Error("the leader's log does not say it reaped the node")
	}
	leader.mustExecute("INSERT INTO t VALUES (2)")

	// A pod down longer than the timeout is reaped too, and rejoins with its data when it returns.
	back := followers(leader, pods[:3])[0]
	back.kill()
	waitFor(t, back.id+" reaped", 30*time.Second, func() bool { _, still := leader.nodes()[back.id]; return !still })
	leader.mustExecute("INSERT INTO t VALUES (3)")
	back.start()
	waitVoters(t, pods[:3], 3)
	waitFor(t, back.id+" with every row", 20*time.Second, func() bool { c, err := back.count("t"); return err == nil && c == 3 })
}
