package system_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The linearizability workload: clients read and write a few registers (rows of kv), with plain writes,
// compare-and-set (an UPDATE that sets the new value only if the old one matches, and returns the value the
// register holds afterwards, so that a failed CAS also says what it saw), and reads at level linearizable
// and strong, sent to random nodes (followers forward writes and serve linearizable reads themselves). Every operation's call and
// return time is recorded; porcupine then checks the history. An operation that failed or timed out may
// have taken effect: it is recorded with an unknown outcome and no return time, as etcd's robustness tests
// do.

const (
	opRead = iota
	opWrite
	opCAS
)

type kvInput struct {
	Op    int
	Key   int
	Value int64 // written, or the new value of a CAS
	Old   int64 // expected value of a CAS
	Level string
	Node  string
}

type kvOutput struct {
	Value   int64 // read; for a CAS, the value after it
	OK      bool  // CAS succeeded
	Unknown bool  // failed or timed out: may or may not have happened
}

var kvModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(kvInput).Key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() []any { return []any{int64(0)} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(int64), input.(kvInput), output.(kvOutput)
		switch in.Op {
		case opRead:
			if out.Value == s {
				return []any{s}
			}
			return nil
		case opWrite:
			if out.Unknown {
				return []any{s, in.Value}
			}
			return []any{in.Value}
		case opCAS:
			switch {
			case out.Unknown && s == in.Old:
				return []any{s, in.Value}
			case out.Unknown:
				return []any{s}
			case out.OK && s == in.Old && out.Value == in.Value:
				return []any{in.Value}
			case !out.OK && s != in.Old && out.Value == s:
				return []any{s}
			}
			return nil
		}
		return nil
	},
	Equal: func(a, b any) bool { return a.(int64) == b.(int64) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		res := ""
		switch {
		case out.Unknown:
			res = "?"
		case in.Op == opRead:
			res = fmt.Sprint(out.Value)
		case in.Op == opCAS:
			res = fmt.Sprintf("%v, now %d", out.OK, out.Value)
		default:
			res = "ok"
		}
		switch in.Op {
		case opRead:
			return fmt.Sprintf("read(k%d)@%s/%s -> %s", in.Key, in.Node, in.Level, res)
		case opWrite:
			return fmt.Sprintf("write(k%d, %d)@%s -> %s", in.Key, in.Value, in.Node, res)
		default:
			return fmt.Sprintf("cas(k%d, %d->%d)@%s -> %s", in.Key, in.Old, in.Value, in.Node, res)
		}
	},
	DescribeState: func(state any) string { return fmt.Sprint(state.(int64)) },
}

// history collects operations from concurrent clients.
type history struct {
	mu                     sync.Mutex
	base                   time.Time
	ops                    []porcupine.Operation
	ids                    atomic.Int64 // porcupine client ids: a client whose operation never returned continues as a new one
	reads, writes, unknown atomic.Int64
}

func (h *history) add(client int, in kvInput, out kvOutput, call, ret time.Time) {
	op := porcupine.Operation{ClientId: client, Input: in, Output: out,
		Call: int64(call.Sub(h.base)), Return: int64(ret.Sub(h.base))}
	if out.Unknown {
		op.Return = math.MaxInt64
	}
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Registers: kvKeys of them at a time. Every historySegment the clients move on to a fresh set, so that
// a long history is checked one segment at a time: porcupine's memory grows with the square of a key's
// history, and a 10-minute run on five keys can exhaust the machine.
const (
	kvKeys          = 5
	historySegment  = 2 * time.Minute
	historySegments = 64 // rows created for this many segments; later operations stay in the last one
)

func segmentOf(key int) int { return key / kvKeys }

// runRegisterClients runs n clients until stop closes.
func runRegisterClients(t *testing.T, h *history, nodes []*node, n int, stop <-chan struct{}, wg *sync.WaitGroup) {
	httpc := newFastClient(2 * time.Second)
	for c := 0; c < n; c++ {
		wg.Go(func() {
			client := int(h.ids.Add(1))
			seq := int64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				nd := nodes[rand.IntN(len(nodes))]
				if !nd.running() {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				seq++
				seg := min(int(time.Since(h.base)/historySegment), historySegments-1)
				in := kvInput{Key: seg*kvKeys + rand.IntN(kvKeys), Node: nd.id}
				var out kvOutput
				call := time.Now()
				switch r := rand.IntN(10); {
				case r < 4:
					in.Op = opRead
					in.Level = "linearizable"
					if r == 0 {
						in.Level = "strong"
					}
					v, err := readRegister(httpc, nd, in.Key, in.Level)
					if err != nil {
						continue // a failed read changes nothing: left out of the history
					}
					out.Value = v
					h.reads.Add(1)
				case r < 7:
					in.Op, in.Value = opWrite, int64(client)*1_000_000+seq
					affected, err := execRegister(httpc, nd, "UPDATE kv SET v = ? WHERE k = ?", in.Value, in.Key)
					out.Unknown = err != nil || affected != 1
					h.writes.Add(1)
				default:
					in.Op, in.Value = opCAS, int64(client)*1_000_000+seq
					in.Old = h.lastSeen(in.Key)
					v, err := casRegister(httpc, nd, in.Key, in.Old, in.Value)
					out.Unknown, out.Value, out.OK = err != nil, v, v == in.Value
					h.writes.Add(1)
				}
				ret := time.Now()
				h.add(client, in, out, call, ret)
				if out.Unknown {
					h.unknown.Add(1)
					client = int(h.ids.Add(1))
				}
			}
		})
	}
}

// lastSeen picks a plausible current value of key for a CAS, from the history so far.
func (h *history) lastSeen(key int) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.ops) - 1; i >= 0 && i >= len(h.ops)-200; i-- {
		in, out := h.ops[i].Input.(kvInput), h.ops[i].Output.(kvOutput)
		if in.Key != key || out.Unknown {
			continue
		}
		if in.Op == opWrite {
			return in.Value
		}
		return out.Value
	}
	return 0
}

func readRegister(c *httpClient, n *node, key int, level string) (int64, error) {
	body, err := c.get(n.url(fmt.Sprintf("/db/query?level=%s&timeout=2s&q=%s", level, url.QueryEscape(fmt.Sprintf("SELECT v FROM kv WHERE k = %d", key)))))
	if err != nil {
		return 0, err
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, err
	}
	if r.Error != "" || len(r.Results) != 1 || r.Results[0].Error != "" || len(r.Results[0].Values) != 1 {
		return 0, fmt.Errorf("read: %s", body)
	}
	return int64(r.Results[0].Values[0][0].(float64)), nil
}

func execRegister(c *httpClient, n *node, sql string, args ...any) (int64, error) {
	stmt, _ := json.Marshal([]any{append([]any{sql}, args...)})
	body, err := c.post(n.url("/db/execute?timeout=2s"), stmt)
	if err != nil {
		return 0, err
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, err
	}
	if r.Error != "" || len(r.Results) != 1 || r.Results[0].Error != "" {
		return 0, fmt.Errorf("write: %s", body)
	}
	return r.Results[0].RowsAffected, nil
}

// casRegister sets key to value if it holds old, and returns what it holds afterwards.
func casRegister(c *httpClient, n *node, key int, old, value int64) (int64, error) {
	stmt, _ := json.Marshal([]any{[]any{"UPDATE kv SET v = CASE WHEN v = ? THEN ? ELSE v END WHERE k = ? RETURNING v", old, value, key}})
	body, err := c.post(n.url("/db/execute?timeout=2s"), stmt)
	if err != nil {
		return 0, err
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, err
	}
	if r.Error != "" || len(r.Results) != 1 || r.Results[0].Error != "" || len(r.Results[0].Values) != 1 || len(r.Results[0].Values[0]) != 1 {
		return 0, fmt.Errorf("cas: %s", body)
	}
	v, ok := r.Results[0].Values[0][0].(float64)
	if !ok {
		return 0, fmt.Errorf("cas: %s", body)
	}
	return int64(v), nil
}

// check runs porcupine on the history; on a violation it writes the visualisation and fails the test.
func (h *history) check(t *testing.T, name string) {
	h.mu.Lock()
	ops := append([]porcupine.Operation(nil), h.ops...)
	h.mu.Unlock()
	saveHistory(t, name, ops)
	start := time.Now()
	pruned := pruneUnknown(ops)
	// Segments use disjoint keys, so each is checked on its own; its memory is freed before the next.
	segments := map[int][]porcupine.Operation{}
	for _, op := range pruned {
		seg := segmentOf(op.Input.(kvInput).Key)
		segments[seg] = append(segments[seg], op)
	}
	res, info := porcupine.Ok, porcupine.LinearizationInfo{}
	for seg := 0; seg < historySegments && res == porcupine.Ok; seg++ {
		if len(segments[seg]) > 0 {
			res, info = porcupine.CheckOperationsVerbose(kvModel.ToModel(), segments[seg], 5*time.Minute)
		}
	}
	t.Logf("linearizability: %d operations in %d segments (%d reads, %d writes, %d with unknown outcome, %d of them never observed and left out), checked in %s: %v",
		len(ops), len(segments), h.reads.Load(), h.writes.Load(), h.unknown.Load(), len(ops)-len(pruned), time.Since(start).Round(time.Millisecond), res)
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Errorf("the linearizability check did not finish in time")
	default:
		path := filepath.Join(os.TempDir(), "raftlite-porcupine-"+strings.ReplaceAll(name, "/", "_")+".html")
		if err := porcupine.VisualizePath(kvModel.ToModel(), info, path); err != nil {
			t.Errorf("write visualisation: %v", err)
		}
		t.Errorf("the history is NOT linearizable; open %s to see it", path)
	}
}

// pruneUnknown makes a long history checkable without changing its verdict (the technique of etcd's
// robustness tests). Every write stores a value no other operation writes, and every operation that
// depends on a register's value reports the value it saw (a read its result, a CAS the value after it), so:
//   - a write or CAS with unknown outcome whose value nobody observed (no read or CAS returned it, no
//     successful CAS expected it) is left out: take any linearization of the whole history and drop it;
//     no remaining operation saw its value, so the rest stays valid, and an unknown outcome allows "did
//     not happen". Conversely a linearization without it is one of the whole history;
//   - one whose value was observed happened before the first observer returned: that becomes its return
//     time, which every linearization already respects.
//
// Open-ended operations are what make porcupine's search explode; this leaves few of them.
func pruneUnknown(ops []porcupine.Operation) []porcupine.Operation {
	type key struct {
		k int
		v int64
	}
	observed := map[key]int64{} // value -> earliest return of an operation that saw it
	see := func(k key, ret int64) {
		if r, ok := observed[k]; !ok || ret < r {
			observed[k] = ret
		}
	}
	for _, op := range ops {
		in, out := op.Input.(kvInput), op.Output.(kvOutput)
		switch {
		case out.Unknown:
		case in.Op == opRead:
			see(key{in.Key, out.Value}, op.Return)
		case in.Op == opCAS:
			see(key{in.Key, out.Value}, op.Return)
			if out.OK {
				see(key{in.Key, in.Old}, op.Return)
			}
		}
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		in, o := op.Input.(kvInput), op.Output.(kvOutput)
		if o.Unknown && in.Op != opRead {
			ret, ok := observed[key{in.Key, in.Value}]
			if !ok {
				continue
			}
			op.Return = max(ret, op.Call)
		}
		out = append(out, op)
	}
	return out
}
