package system_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlite/raftlite/internal/testpki"
)

// consumer is a CDC webhook endpoint: it records every batch it accepts; while down it answers 503.
type consumer struct {
	srv     *httptest.Server
	down    atomic.Bool
	mu      sync.Mutex
	batches []cdcBatch
	posts   atomic.Int64
}

type cdcBatch struct {
	ServiceID string     `json:"service_id"`
	NodeID    string     `json:"node_id"`
	Payload   []cdcEntry `json:"payload"`
}

type cdcEntry struct {
	Index     uint64     `json:"index"`
	Timestamp int64      `json:"commit_timestamp"`
	Events    []cdcEvent `json:"events"`
}

type cdcEvent struct {
	Op       string         `json:"op"`
	Table    string         `json:"table"`
	NewRowID int64          `json:"new_row_id"`
	OldRowID int64          `json:"old_row_id"`
	Before   map[string]any `json:"before"`
	After    map[string]any `json:"after"`
	Error    string         `json:"error"`
}

func newConsumer(t *testing.T) *consumer {
	c := &consumer{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.posts.Add(1)
		body, _ := io.ReadAll(r.Body)
		if c.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("CDC POST with Content-Type %q", r.Header.Get("Content-Type"))
		}
		var b cdcBatch
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		if err := dec.Decode(&b); err != nil {
			t.Errorf("CDC POST body is not the envelope: %v: %s", err, body)
		}
		c.mu.Lock()
		c.batches = append(c.batches, b)
		c.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// entries returns every payload entry received, in arrival order.
func (c *consumer) entries() []cdcEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []cdcEntry
	for _, b := range c.batches {
		out = append(out, b.Payload...)
	}
	return out
}

// cdcConfig writes a CDC configuration file for the consumer, with short intervals for tests.
func cdcConfig(t *testing.T, c *consumer, extra string) string {
	path := filepath.Join(t.TempDir(), "cdc.json")
	cfg := fmt.Sprintf(`{"endpoint": %q, "service_id": "svc", "max_batch_size": 20, "max_batch_delay": 50000000,
		"high_watermark_interval": 200000000, "transmit_timeout": 2000000000, "transmit_retry_policy": 1,
		"transmit_min_backoff": "50ms", "transmit_max_backoff": "400ms"%s}`, c.srv.URL, extra)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cdcQueueLength is how many entries a node's CDC queue holds (/status cdc.fifo.length), or -1 if its
// /status does not say.
func cdcQueueLength(n *node) float64 {
	cdc, _ := n.status()["cdc"].(map[string]any)
	fifo, _ := cdc["fifo"].(map[string]any)
	l, ok := fifo["length"].(float64)
	if !ok {
		return -1
	}
	return l
}

// waitQueuesEmpty waits until every node's CDC queue is pruned empty (the leader has told them it
// delivered everything).
func waitQueuesEmpty(t *testing.T, nodes ...*node) {
	t.Helper()
	waitFor(t, "every node's CDC queue pruned", 20*time.Second, func() bool {
		for _, n := range nodes {
			if cdcQueueLength(n) != 0 {
				return false
			}
		}
		return true
	})
}

// checkDelivery asserts that the consumer got every entry in want (index → true) at least once, that new
// entries arrived in index order (an index below the highest seen is only ever a repeat), and returns
// how many entries were repeats.
func checkDelivery(t *testing.T, got []cdcEntry) (byIndex map[uint64]cdcEntry, repeats int) {
	t.Helper()
	byIndex = map[uint64]cdcEntry{}
	var top uint64
	for _, e := range got {
		if _, seen := byIndex[e.Index]; seen {
			repeats++
			continue
		}
		if e.Index < top {
			t.Errorf("entry %d arrived after %d, and was new: out of order", e.Index, top)
		}
		top = max(top, e.Index)
		byIndex[e.Index] = e
	}
	return byIndex, repeats
}

// allDelivered reports whether every acknowledged insert is among the delivered events. (Counting is not
// enough: writes whose answer was lost, a leader killed under them, are delivered too, and would make up
// the count while acknowledged ones are still on their way.)
func allDelivered[V any](byIndex map[uint64]cdcEntry, acked map[int64]V) bool {
	ids := rowsInserted(byIndex, "acked")
	for id := range acked {
		if !ids[id] {
			return false
		}
	}
	return true
}

// waitDelivered waits up to a minute for every acknowledged insert to reach the consumer, and returns
// the entries delivered (first copies, by index) and how many came again. Each insert still missing then
// is an error, with what tells a lost event from a lost write: whether the row is in the database (asked
// through via), and any later copy of an entry that holds it.
func waitDelivered[V any](t *testing.T, c *consumer, acked map[int64]V, via *node) (map[uint64]cdcEntry, int) {
	t.Helper()
	var byIndex map[uint64]cdcEntry
	var repeats int
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if byIndex, repeats = checkDelivery(t, c.entries()); allDelivered(byIndex, acked) {
			return byIndex, repeats
		}
	}
	ids := rowsInserted(byIndex, "acked")
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range acked {
		if ids[id] {
			continue
		}
		t.Errorf("acknowledged insert %d never delivered", id)
		if r, err := via.query(fmt.Sprintf("SELECT count(*) FROM acked WHERE id = %d", id), "strong"); err == nil {
			t.Logf("insert %d: %v row(s) in the database", id, r.Values[0][0])
		}
		for _, b := range c.batches {
			for _, e := range b.Payload {
				for _, ev := range e.Events {
					if n, _ := ev.After["id"].(json.Number).Int64(); n == id {
						t.Logf("insert %d is in entry %d sent by %s, whose first copy was %+v", id, e.Index, b.NodeID, byIndex[e.Index])
					}
				}
			}
		}
	}
	return byIndex, repeats
}

// rowsInserted collects the ids of acked rows the delivered events insert.
func rowsInserted(byIndex map[uint64]cdcEntry, table string) map[int64]bool {
	ids := map[int64]bool{}
	for _, e := range byIndex {
		for _, ev := range e.Events {
			if ev.Op == "INSERT" && ev.Table == table {
				n, _ := ev.After["id"].(json.Number).Int64()
				ids[n] = true
			}
		}
	}
	return ids
}

// Every op and every column type arrives with the right images, under the index its write was committed
// at; a multi-statement request is one entry; the leader alone sends; every node's queue is pruned once
// delivered.
func TestCDCDeliversEveryChange(t *testing.T) {
	c := newConsumer(t)
	nodes := cluster(t, 3, "-cdc-config", cdcConfig(t, c, ""))
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB, n)")
	ins := leader.mustExecute(`INSERT INTO t VALUES (1, 9007199254740993, 2.5, 'héllo <&>', x'00ff10', NULL)`)
	multi := leader.mustExecute(`UPDATE t SET id = 10, s = 'moved' WHERE id = 1`, `INSERT INTO t(id, i) VALUES (2, -1)`, `DELETE FROM t WHERE id = 2`)
	var byIndex map[uint64]cdcEntry
	waitFor(t, "the changes at the consumer", 20*time.Second, func() bool {
		byIndex, _ = checkDelivery(t, c.entries())
		return len(byIndex) == 2
	})
	first, second := byIndex[ins.RaftIndex], byIndex[multi.RaftIndex]
	if len(first.Events) != 1 || len(second.Events) != 3 {
		t.Fatalf("entries by the writes' indexes %d and %d: %+v", ins.RaftIndex, multi.RaftIndex, byIndex)
	}
	e := first.Events[0]
	want := map[string]any{"b": "AP8Q", "i": json.Number("9007199254740993"), "id": json.Number("1"), "n": nil, "r": json.Number("2.5"), "s": "héllo <&>"}
	if e.Op != "INSERT" || e.Table != "t" || e.NewRowID != 1 || fmt.Sprint(e.After) != fmt.Sprint(want) || e.Before != nil {
		t.Errorf("the insert: %+v", e)
	}
	u, i, d := second.Events[0], second.Events[1], second.Events[2]
	if u.Op != "UPDATE" || u.OldRowID != 1 || u.NewRowID != 10 || u.Before["s"] != "héllo <&>" || u.After["s"] != "moved" {
		t.Errorf("the update: %+v", u)
	}
	if i.Op != "INSERT" || i.NewRowID != 2 || d.Op != "DELETE" || d.OldRowID != 2 || d.Before["i"] != json.Number("-1") || d.After != nil {
		t.Errorf("the insert and delete: %+v %+v", i, d)
	}
	if first.Timestamp == 0 {
		t.Error("no commit_timestamp")
	}
	c.mu.Lock()
	for _, b := range c.batches {
		if b.NodeID != leader.id || b.ServiceID != "svc" {
			t.Errorf("a batch from %q (service %q); the leader is %s", b.NodeID, b.ServiceID, leader.id)
		}
	}
	c.mu.Unlock()
	// The same is in /metrics and /debug/vars, once the leader has read the endpoint's answers (the
	// consumer records a batch before the sender hears back).
	waitFor(t, "the leader's CDC metrics and counters", 10*time.Second, func() bool {
		m := scrape(t, leader)
		var vars map[string]map[string]float64
		_, body := do(t, client, "GET", leader.url("/debug/vars?key=cdc.service"), "", "")
		return m["raftlite_cdc_batches_sent_total"] >= 1 && m["raftlite_cdc_high_watermark"] >= float64(multi.RaftIndex) &&
			json.Unmarshal([]byte(body), &vars) == nil && vars["cdc.service"]["num_events_tx_ok"] >= 1
	})
	waitQueuesEmpty(t, nodes...)
}

// table_filter and row_ids_only, on a one-node cluster.
func TestCDCFilterAndRowIDs(t *testing.T) {
	c := newConsumer(t)
	n := newNode(t, "n1", "-cdc-config", cdcConfig(t, c, `, "table_filter": "^keep", "row_ids_only": true`)).start()
	waitLeader(t, n)
	n.mustExecute("CREATE TABLE keepme (a)", "CREATE TABLE other (a)")
	n.mustExecute("INSERT INTO other VALUES (1)")
	r := n.mustExecute("INSERT INTO keepme VALUES (1)", "INSERT INTO other VALUES (2)")
	waitFor(t, "the change", 10*time.Second, func() bool { return len(c.entries()) > 0 })
	time.Sleep(300 * time.Millisecond)
	got := c.entries()
	if len(got) != 1 || got[0].Index != r.RaftIndex || len(got[0].Events) != 1 {
		t.Fatalf("entries: %+v", got)
	}
	if e := got[0].Events[0]; e.Table != "keepme" || e.NewRowID != 1 || e.After != nil {
		t.Fatalf("event: %+v", e)
	}
}

// The endpoint is down while writes go on: nothing is lost, the queue holds what is undelivered, and once
// the endpoint is back the changes arrive in order and the queues empty.
func TestCDCEndpointDown(t *testing.T) {
	c := newConsumer(t)
	nodes := cluster(t, 3, "-cdc-config", cdcConfig(t, c, ""))
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE acked (id INTEGER PRIMARY KEY)")
	c.down.Store(true)
	w := startWriters(t, nodes, 4)
	time.Sleep(15 * time.Second)
	acked := w.halt()
	if queued := cdcQueueLength(leader); int(queued) < len(acked) {
		t.Errorf("the leader's queue holds %d entries; %d writes were acknowledged and none delivered", int(queued), len(acked))
	}
	if len(c.entries()) != 0 || c.posts.Load() == 0 {
		t.Fatalf("while down: %d entries accepted, %d POSTs tried", len(c.entries()), c.posts.Load())
	}
	t.Logf("%d writes while the endpoint was down; %d POSTs refused", len(acked), c.posts.Load())
	c.down.Store(false)
	waitDelivered(t, c, acked, leader)
	waitQueuesEmpty(t, nodes...)
}

// The leader is killed in the middle of a stream and a follower restarts: every committed change is
// delivered at least once, new entries in index order; repeats only come with the change of leader.
func TestCDCLeaderKilled(t *testing.T) {
	c := newConsumer(t)
	nodes := cluster(t, 3, "-cdc-config", cdcConfig(t, c, ""))
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE acked (id INTEGER PRIMARY KEY)")
	w := startWriters(t, nodes, 4)
	time.Sleep(3 * time.Second)
	leader.kill()
	others := followers(leader, nodes)
	newLeader := waitLeader(t, others...)
	t.Logf("killed %s; %s leads", leader.id, newLeader.id)
	time.Sleep(2 * time.Second)
	follower := followers(newLeader, others)[0]
	follower.stop()
	time.Sleep(time.Second)
	follower.start()
	leader.start()
	time.Sleep(2 * time.Second)
	acked := w.halt()
	byIndex, repeats := waitDelivered(t, c, acked, newLeader)
	// Repeats come from the new leader resending what the old one sent within its last high watermark
	// interval (200 ms here), or the restarted node's: a few batches' worth, not the stream.
	if repeats > len(byIndex)/2 {
		t.Errorf("%d repeats for %d entries", repeats, len(byIndex))
	}
	t.Logf("%d writes, %d entries delivered, %d repeats", len(acked), len(byIndex), repeats)
	// Which sender repeated what: a repeat should come from a sender other than the one that first
	// delivered the entry (a new leader resending), within its last high watermark interval.
	c.mu.Lock()
	first := map[uint64]string{}
	perSender := map[string][2]uint64{}
	for _, b := range c.batches {
		for _, e := range b.Payload {
			if _, ok := first[e.Index]; !ok {
				first[e.Index] = b.NodeID
				continue
			}
			r := perSender[b.NodeID+" repeating "+first[e.Index]]
			if r[0] == 0 || e.Index < r[0] {
				r[0] = e.Index
			}
			r[1] = max(r[1], e.Index)
			perSender[b.NodeID+" repeating "+first[e.Index]] = r
		}
	}
	c.mu.Unlock()
	for k, r := range perSender {
		t.Logf("%s: indexes %d to %d", k, r[0], r[1])
	}
}

// Log compaction and a snapshot sent to a lagging follower, while the changes are undelivered, lose
// nothing: the follower, made leader, delivers them from the queue the snapshot brought.
func TestCDCCompactionAndSnapshot(t *testing.T) {
	c := newConsumer(t)
	flags := []string{"-cdc-config", cdcConfig(t, c, ""), "-raft-snap", "64", "-raft-snap-int", "200ms"}
	nodes := cluster(t, 3, flags...)
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE acked (id INTEGER PRIMARY KEY)")
	c.down.Store(true)
	lagging := followers(leader, nodes)[0]
	lagging.stop()
	acked := map[int64]bool{}
	for i := int64(1); i <= 400; i++ {
		leader.mustExecute([]any{"INSERT INTO acked(id) VALUES(?)", i})
		acked[i] = true
	}
	waitFor(t, "the log compacted", 20*time.Second, func() bool {
		first, _ := leader.storeField("raft", "first_log_index").(float64)
		return first > 100
	})
	lagging.start()
	waitFor(t, lagging.id+" to catch up by snapshot", 30*time.Second, func() bool {
		n, err := lagging.count("acked")
		return err == nil && n == 400
	})
	if b, _ := os.ReadFile(lagging.logPath); !strings.Contains(string(b), "installed snapshot from leader") {
		t.Fatalf("%s caught up without installing a snapshot: the test shows nothing", lagging.id)
	}
	if code, body := do(t, client, "POST", leader.url("/leader?wait"), "application/json", `{"id":"`+lagging.id+`"}`); code.StatusCode != 200 {
		t.Fatalf("hand leadership to %s: %d %s", lagging.id, code.StatusCode, body)
	}
	waitFor(t, lagging.id+" to lead", 10*time.Second, lagging.isLeader)
	c.down.Store(false)
	waitDelivered(t, c, acked, lagging)
}

// A bad configuration stops the node at start with a message that names the field.
func TestCDCBadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-cdc-config", write("unknown.json", `{"endpoint": "stdout", "max_batchsize": 5}`)}, `unknown field "max_batchsize"`},
		{[]string{"-cdc-config", write("url.json", `{"endpoint": "ftp://example.com/x"}`)}, `field "endpoint": unsupported scheme "ftp"`},
		{[]string{"-cdc-config", write("re.json", `{"endpoint": "stdout", "table_filter": "("}`)}, `field "table_filter": invalid regular expression`},
		{[]string{"-cdc-config", write("neg.json", `{"endpoint": "stdout", "max_batch_delay": -5}`)}, `field "max_batch_delay": -5ns is negative`},
		{[]string{"-cdc-config", write("type.json", `{"endpoint": "stdout", "transmit_retry_policy": "exponential"}`)}, `field "transmit_retry_policy"`},
		{[]string{"-cdc-config", filepath.Join(dir, "missing.json")}, "no such file or directory"},
		{[]string{"-cdc-config", "stdout", "-raft-non-voter", "-join", "localhost:1"}, "CDC cannot be enabled on non-voting nodes"},
	} {
		args := append(append([]string{"-node-id", "x", "-http-addr", freePort(t), "-raft-addr", freePort(t)}, tc.args...), filepath.Join(dir, "data"))
		out, err := exec.Command(raftlitedBin, args...).CombinedOutput()
		if err == nil {
			t.Errorf("%v: started", tc.args)
		}
		// The text log quotes the message, escaping its own quotes.
		if msg := strings.ReplaceAll(string(out), `\"`, `"`); !strings.Contains(msg, tc.want) {
			t.Errorf("%v: output %q lacks %q", tc.args, out, tc.want)
		}
	}
}

// An https endpoint that requires a client certificate: CDC verifies the server with ca_cert_file and
// presents cert_file and key_file; without the client certificate, delivery fails and says why.
func TestCDCMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := testpki.NewCA("cdc test CA")
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.WriteFiles(dir, "endpoint", "endpoint", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := ca.WriteFiles(dir, "node", "node")
	if err != nil {
		t.Fatal(err)
	}
	c := &consumer{}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b cdcBatch
		json.NewDecoder(r.Body).Decode(&b)
		c.mu.Lock()
		c.batches = append(c.batches, b)
		c.mu.Unlock()
	}))
	cert, err := tls.LoadX509KeyPair(server.Cert, server.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	c.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	write := func(name, tlsFields string) string {
		p := filepath.Join(dir, name)
		cfg := fmt.Sprintf(`{"endpoint": %q, "max_batch_delay": "20ms", "transmit_min_backoff": "50ms", "tls": {%s}}`, c.srv.URL, tlsFields)
		os.WriteFile(p, []byte(cfg), 0o600)
		return p
	}
	good := write("good.json", fmt.Sprintf(`"ca_cert_file": %q, "cert_file": %q, "key_file": %q`, server.CA, clientCert.Cert, clientCert.Key))
	n := newNode(t, "n1", "-cdc-config", good).start()
	waitLeader(t, n)
	r := n.mustExecute("CREATE TABLE t (a)", "INSERT INTO t VALUES (1)")
	waitFor(t, "the change over mutual TLS", 10*time.Second, func() bool {
		for _, e := range c.entries() {
			if e.Index == r.RaftIndex {
				return true
			}
		}
		return false
	})
	n.stop()

	noCert := write("nocert.json", fmt.Sprintf(`"ca_cert_file": %q`, server.CA))
	m := newNode(t, "m1", "-cdc-config", noCert).start()
	waitLeader(t, m)
	m.mustExecute("CREATE TABLE t (a)", "INSERT INTO t VALUES (1)")
	waitFor(t, "the refused delivery in /status", 10*time.Second, func() bool {
		e, _ := m.status()["cdc"].(map[string]any)["last_error"].(string)
		return strings.Contains(e, "certificate") || strings.Contains(e, "tls")
	})
}
