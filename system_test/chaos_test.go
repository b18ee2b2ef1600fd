package system_test

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlite/raftlite/raftlog"
)

// chaosDuration sets the length of each chaos run; `make chaos` runs the long ones.
var chaosDuration = flag.Duration("chaos", 0, "length of each chaos run (0: the short runs of the normal suite)")

// chaosHealBound is how long a cluster may take, once the faults stop, to have every node voting again
// and take a write.
const chaosHealBound = 60 * time.Second

// chaosCluster is a cluster whose Raft traffic goes through a faultNet.
type chaosCluster struct {
	t     *testing.T
	net   *faultNet
	nodes []*node
	spare *node // joins and leaves again, for membership churn
	// slowestBack is the longest a restarted or rejoining node took to vote again.
	slowestBack time.Duration
	id          string // cluster ID
	mu          sync.Mutex
	log         []string
	count       map[string]int
}

func newChaosCluster(t *testing.T, n int) *chaosCluster {
	t.Helper()
	c := &chaosCluster{t: t, net: newFaultNet(), count: map[string]int{}}
	t.Cleanup(c.net.close)
	for i := 1; i <= n; i++ {
		nd := newNode(t, fmt.Sprintf("n%d", i))
		adv, err := c.net.add(nd.id, nd.raftAddr)
		if err != nil {
			t.Fatal(err)
		}
		nd.raftAdv = adv
		if i > 1 {
			nd.flags = []string{"-join", c.nodes[0].raftAdv}
		}
		// Compact often, so that snapshots are sent during the run.
		nd.flags = append(nd.flags, "-raft-snap", "300", "-raft-snap-int", "500ms")
		c.nodes = append(c.nodes, nd)
	}
	c.nodes[0].start()
	waitLeader(t, c.nodes[0])
	for _, nd := range c.nodes[1:] {
		nd.start()
	}
	waitVoters(t, c.nodes, n)
	c.id = sameClusterID(t, c.nodes...)
	c.spare = newNode(t, fmt.Sprintf("n%d", n+1))
	adv, err := c.net.add(c.spare.id, c.spare.raftAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.spare.raftAdv = adv
	return c
}

// restarted waits until victim, just restarted, is a voting member of the cluster again (a node that lost
// its data rejoins under a new identity and must catch up first): only then is its fault undone. A node
// that does not get there while the rest of the cluster is healthy is a bug.
func (c *chaosCluster) restarted(victim *node) {
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if c.isMember(victim) {
			c.mu.Lock()
			c.slowestBack = max(c.slowestBack, time.Since(start))
			c.mu.Unlock()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Errorf("%s did not become a voting member of cluster %s again within 60s of its restart", victim.id, c.id)
}

func (c *chaosCluster) isMember(victim *node) bool {
	st := victim.status()
	store, _ := st["store"].(map[string]any)
	raft, _ := store["raft"].(map[string]any)
	if store["cluster_id"] != c.id || (raft["state"] != "Follower" && raft["state"] != "Leader") {
		return false
	}
	list, _ := store["nodes"].([]any)
	voters, self := 0, false
	for _, e := range list {
		m, _ := e.(map[string]any)
		if m["suffrage"] == "voter" {
			voters++
			self = self || m["id"] == victim.id
		}
	}
	return self && voters == len(c.nodes)
}

func (c *chaosCluster) note(kind, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count[kind]++
	c.log = append(c.log, fmt.Sprintf("%s %s: %s", time.Now().Format("15:04:05.000"), kind, fmt.Sprintf(format, args...)))
}

func (c *chaosCluster) leader() *node {
	for _, n := range c.nodes {
		if n.running() && n.isLeader() {
			return n
		}
	}
	return nil
}

// pick chooses a node, the leader half of the time.
func (c *chaosCluster) pick() *node {
	if l := c.leader(); l != nil && rand.IntN(2) == 0 {
		return l
	}
	return c.nodes[rand.IntN(len(c.nodes))]
}

// nemesis injects one fault at a time, each undone before the next, until stop closes.
func (c *chaosCluster) nemesis(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(500+rand.IntN(1500)) * time.Millisecond):
		}
		victim := c.pick()
		switch rand.IntN(12) {
		case 0:
			c.note("kill", "kill -9 %s, restart", victim.id)
			victim.kill()
			time.Sleep(time.Duration(rand.IntN(1500)) * time.Millisecond)
			victim.start()
			c.restarted(victim)
		case 1:
			d := time.Duration(800+rand.IntN(1500)) * time.Millisecond
			c.note("pause", "SIGSTOP %s for %s", victim.id, d)
			victim.pause(d)
		case 2, 3:
			mode, name := cut, "cut"
			if rand.IntN(2) == 0 {
				mode, name = blackhole, "blackhole"
			}
			groups := c.split(victim)
			d := time.Duration(1000+rand.IntN(2500)) * time.Millisecond
			c.note("partition", "%s %v for %s", name, groups, d)
			c.net.partition(mode, groups...)
			time.Sleep(d)
			c.net.heal()
		case 4:
			d := time.Duration(20+rand.IntN(60)) * time.Millisecond
			c.note("delay", "%s into %s for 2s", d, victim.id)
			c.net.setDelay(victim.id, d)
			time.Sleep(2 * time.Second)
			c.net.setDelay(victim.id, 0)
		case 5:
			c.note("wipe", "kill -9 %s, delete its data directory, start it with the same command", victim.id)
			victim.kill()
			os.RemoveAll(victim.dir)
			victim.start()
			c.restarted(victim)
		case 6:
			c.note("torn-log", "kill -9 %s, leave a write cut short at the end of its Raft log, restart", victim.id)
			victim.kill()
			tearLogTail(victim)
			victim.start()
			c.restarted(victim)
		case 7:
			c.note("corrupt-log", "kill -9 %s, damage the last record of its Raft log, restart", victim.id)
			victim.kill()
			corruptLastRecord(victim)
			victim.start()
			c.restarted(victim)
		case 8:
			c.note("corrupt-db", "stop %s, damage its database file, restart", victim.id)
			victim.stop()
			corruptDB(victim)
			victim.start()
			c.restarted(victim)
		case 9:
			c.transfer(victim)
		case 10:
			c.removeAndRejoin(victim)
		case 11:
			c.addAndRemoveSpare()
		}
	}
}

// other is a running node other than n, or nil.
func (c *chaosCluster) other(n *node) *node {
	for _, k := range rand.Perm(len(c.nodes)) {
		if o := c.nodes[k]; o != n && o.running() {
			return o
		}
	}
	return nil
}

// remove asks a node other than victim to take victim out of the cluster.
func (c *chaosCluster) remove(victim *node) error {
	through := c.other(victim)
	if through == nil {
		return fmt.Errorf("no node to ask")
	}
	resp, err := httpDo(http.MethodDelete, through.url("/remove?timeout=10s"), `{"id":"`+victim.id+`"}`)
	if err != nil {
		return err
	}
	if resp.status != 200 {
		return fmt.Errorf("DELETE /remove through %s: %d %s", through.id, resp.status, resp.body)
	}
	return nil
}

// transfer hands leadership to victim (or away from it, if it leads).
func (c *chaosCluster) transfer(victim *node) {
	to := victim
	if victim.isLeader() {
		to = c.other(victim)
	}
	through := c.other(nil)
	if to == nil || through == nil {
		return
	}
	c.note("transfer", "leadership to %s (asked through %s)", to.id, through.id)
	resp, err := httpDo(http.MethodPost, through.url("/leader?wait&timeout=5s"), `{"id":"`+to.id+`"}`)
	if err != nil || resp.status != 200 {
		c.note("transfer-refused", "%v %v", err, resp)
	}
}

// removeAndRejoin removes victim, stops it, deletes its data and starts it again joining through another
// node, then waits until it votes again.
func (c *chaosCluster) removeAndRejoin(victim *node) {
	c.note("remove-rejoin", "remove %s, stop it, delete its data, start it with -join", victim.id)
	if err := c.remove(victim); err != nil {
		c.note("remove-refused", "%s: %v", victim.id, err)
		return
	}
	victim.stop()
	os.RemoveAll(victim.dir)
	through := c.other(victim)
	if through == nil {
		through = c.nodes[0]
	}
	victim.flags = append(withoutJoin(victim.flags), "-join", through.raftAdv)
	victim.start()
	c.restarted(victim)
}

// addAndRemoveSpare adds a node with an empty data directory, waits until it votes, then removes it.
func (c *chaosCluster) addAndRemoveSpare() {
	through := c.other(nil)
	if through == nil {
		return
	}
	sp := c.spare
	c.note("add-remove", "%s joins through %s, becomes a voter, is removed", sp.id, through.id)
	os.RemoveAll(sp.dir)
	sp.flags = []string{"-join", through.raftAdv, "-raft-snap", "300", "-raft-snap-int", "500ms"}
	sp.start()
	deadline := time.Now().Add(60 * time.Second)
	for !isVoterSeenBy(sp, sp.id) {
		if time.Now().After(deadline) {
			c.t.Errorf("%s did not become a voter within 60s of joining", sp.id)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for attempt := 0; ; attempt++ {
		err := c.remove(sp)
		if err == nil {
			break
		}
		if attempt == 50 {
			c.t.Errorf("could not remove %s: %v", sp.id, err)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	sp.stop()
}

func withoutJoin(flags []string) []string {
	var out []string
	for i := 0; i < len(flags); i++ {
		if flags[i] == "-join" {
			i++
			continue
		}
		out = append(out, flags[i])
	}
	return out
}

type httpResult struct {
	status int
	body   string
}

func httpDo(method, u, body string) (httpResult, error) {
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return httpResult{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{resp.StatusCode, string(b)}, nil
}

// split isolates victim from the others, or (in a larger cluster) splits off a minority containing it.
func (c *chaosCluster) split(victim *node) [][]string {
	var minority, majority []string
	size := 1 + rand.IntN((len(c.nodes)-1)/2)
	minority = append(minority, victim.id)
	for _, n := range c.nodes {
		if n != victim && len(minority) < size && rand.IntN(2) == 0 {
			minority = append(minority, n.id)
		} else if n != victim {
			majority = append(majority, n.id)
		}
	}
	return [][]string{minority, majority}
}

// tearLogTail leaves what a crash in the middle of an append leaves: the start of a record that was never
// completed (so never fsynced, so never acknowledged) after everything that was.
func tearLogTail(n *node) {
	last := lastSegmentFile(n)
	if last == "" {
		return
	}
	f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	partial := make([]byte, 8+rand.IntN(100))
	binary.LittleEndian.PutUint32(partial, uint32(len(partial)+100)) // claims more than is there
	f.Write(partial)
}

// corruptLastRecord damages a byte of the newest record, which was fsynced and may have been acknowledged.
func corruptLastRecord(n *node) {
	if last := lastSegmentFile(n); last != "" {
		flipByteAt(last, 2)
	}
}

// corruptDB damages a byte of the database file while the node is stopped.
func corruptDB(n *node) {
	path := filepath.Join(n.dir, "db.sqlite")
	if fi, err := os.Stat(path); err == nil && fi.Size() > 4096 {
		flipByteAt(path, 1+rand.IntN(int(fi.Size())-4096))
	}
}

func lastSegmentFile(n *node) string {
	segs, _ := filepath.Glob(filepath.Join(n.dir, "raft", "*.seg"))
	if len(segs) == 0 {
		return ""
	}
	sort.Strings(segs)
	return segs[len(segs)-1]
}

func flipByteAt(path string, fromEnd int) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer f.Close()
	fi, _ := f.Stat()
	off := fi.Size() - int64(fromEnd)
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err == nil {
		b[0] ^= 0x5a
		f.WriteAt(b[:], off)
	}
}

// inserts runs clients that insert unique ids and remember which were acknowledged.
type inserts struct {
	next  atomic.Int64
	mu    sync.Mutex
	acked []int64
}

func (w *inserts) run(nodes []*node, clients int, stop <-chan struct{}, wg *sync.WaitGroup) {
	httpc := newFastClient(2 * time.Second)
	for i := 0; i < clients; i++ {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := nodes[rand.IntN(len(nodes))]
				if !n.running() {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				id := w.next.Add(1)
				if _, err := execRegister(httpc, n, "INSERT INTO acked(id) VALUES(?)", id); err == nil {
					w.mu.Lock()
					w.acked = append(w.acked, id)
					w.mu.Unlock()
				}
			}
		})
	}
}

// runChaos runs the workloads and the nemesis on an n-node cluster for d, then checks everything.
func runChaos(t *testing.T, n int, d time.Duration) {
	c := newChaosCluster(t, n)
	leader := waitLeader(t, c.nodes...)
	rows := []string{"CREATE TABLE kv (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)", "CREATE TABLE acked (id INTEGER PRIMARY KEY)"}
	for k := 0; k < kvKeys*historySegments; k++ {
		rows = append(rows, fmt.Sprintf("INSERT INTO kv VALUES (%d, 0)", k))
	}
	anyRows := make([]any, len(rows))
	for i, r := range rows {
		anyRows[i] = r
	}
	leader.mustExecute(anyRows...)

	h := &history{base: time.Now()}
	ins := &inserts{}
	stop, nemesisStop := make(chan struct{}), make(chan struct{})
	var wg, nwg sync.WaitGroup
	runRegisterClients(t, h, c.nodes, 6, stop, &wg)
	ins.run(c.nodes, 3, stop, &wg)
	nwg.Go(func() { c.nemesis(nemesisStop) })
	time.Sleep(d)
	close(nemesisStop)
	nwg.Wait()
	// Faults over: every node up and reachable, then a little more traffic, then stop the clients. The
	// cluster must heal by itself: every node a voter again, writes taken, identical databases.
	c.net.heal()
	for _, nd := range c.nodes {
		if !nd.running() {
			nd.start()
		}
	}
	healStart := time.Now()
	waitFor(t, "the cluster to heal (every node a voter, a write taken)", chaosHealBound, func() bool {
		for _, nd := range c.nodes {
			if !c.isMember(nd) {
				return false
			}
		}
		l := c.leader()
		if l == nil {
			return false
		}
		_, err := l.execute("CREATE TABLE IF NOT EXISTS healed (x)")
		return err == nil
	})
	healed := time.Since(healStart)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	c.mu.Lock()
	t.Logf("%d-node run, %s: faults %v; a restarted or rejoining node voted again within %s at most; healed %s after the last fault (bound %s)",
		n, d, c.count, c.slowestBack.Round(time.Millisecond), healed.Round(time.Millisecond), chaosHealBound)
	for _, l := range c.log {
		t.Log("  " + l)
	}
	c.mu.Unlock()

	waitVoters(t, c.nodes, n)
	dump := waitConverged(t, c.nodes...)
	h.check(t, t.Name())
	present := map[string]bool{}
	for _, line := range strings.Split(dump, "\n") {
		if v, ok := strings.CutPrefix(line, `INSERT INTO "acked" VALUES(`); ok {
			present[strings.TrimSuffix(v, ");")] = true
		}
	}
	missing := 0
	for _, id := range ins.acked {
		if !present[strconv.FormatInt(id, 10)] {
			missing++
			if missing <= 10 {
				t.Errorf("acknowledged insert %d is missing", id)
			}
		}
	}
	t.Logf("durability: %d acknowledged inserts, %d missing; %d nodes hold identical databases", len(ins.acked), missing, n)
	for _, nd := range c.nodes {
		nd.stop()
	}
	checkLogsAgree(t, c.nodes)
}

// checkLogsAgree opens every node's Raft log and checks that they hold the same entry wherever two of
// them hold an entry at an index both have committed.
func checkLogsAgree(t *testing.T, nodes []*node) {
	t.Helper()
	type entry struct {
		term uint64
		data []byte
		from string
	}
	seen := map[uint64]entry{}
	compared := 0
	for _, n := range nodes {
		l, err := raftlog.Open(filepath.Join(n.dir, "raft"), raftlog.Options{})
		if err != nil {
			t.Fatalf("open the Raft log of %s: %v", n.id, err)
		}
		hs, _, _ := l.InitialState()
		first, _ := l.FirstIndex()
		last, _ := l.LastIndex()
		last = min(last, hs.GetCommit())
		if first <= last {
			ents, err := l.Entries(first, last+1, 1<<62)
			if err != nil {
				t.Fatalf("read the Raft log of %s: %v", n.id, err)
			}
			for _, e := range ents {
				prev, ok := seen[e.GetIndex()]
				if !ok {
					seen[e.GetIndex()] = entry{e.GetTerm(), e.GetData(), n.id}
					continue
				}
				compared++
				if prev.term != e.GetTerm() || !bytes.Equal(prev.data, e.GetData()) {
					t.Errorf("committed entry %d differs between %s (term %d) and %s (term %d)", e.GetIndex(), prev.from, prev.term, n.id, e.GetTerm())
				}
			}
		}
		l.Close()
	}
	t.Logf("raft logs: %d committed entries compared across nodes, all equal", compared)
}

// TestChaos: the short runs are part of the normal suite; `go test -run TestChaos ./system_test -args -chaos=10m` (make chaos)
// runs long ones.
func TestChaos(t *testing.T) {
	d := *chaosDuration
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d-nodes", n), func(t *testing.T) {
			run := d
			if run == 0 {
				run = 20 * time.Second
			}
			runChaos(t, n, run)
		})
	}
}

// httpClient is a keep-alive client whose errors include non-200 answers.
type httpClient struct{ c *http.Client }

func newFastClient(timeout time.Duration) *httpClient {
	return &httpClient{c: &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

func (c *httpClient) get(u string) ([]byte, error) {
	resp, err := c.c.Get(u)
	return readOK(resp, err)
}

func (c *httpClient) post(u string, body []byte) ([]byte, error) {
	resp, err := c.c.Post(u, "application/json", bytes.NewReader(body))
	return readOK(resp, err)
}

func readOK(resp *http.Response, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return b, nil
}
