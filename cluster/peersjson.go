package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/nodecall"
)

// Recovering from a lost quorum. When a majority of the voters is gone for good, Raft cannot commit
// anything, a membership change included: the survivors need an operator. As with rqlite, the operator
// writes the nodes that remain into <data>/raft/peers.json on each of them,
//
//	[{"id": "n1", "address": "host:4002", "non_voter": false}, ...]
//
// and starts them. Each survivor then, before it runs raft:
//
//  1. publishes its log position (last term and index, commit index and its term) and waits until every
//     node the file lists answers with the same file;
//  2. finds the highest commit index any survivor knows, and the survivors whose logs hold that entry;
//     among those, the one with the most up-to-date log (last term, last index, then node-id) is the
//     source: every entry any survivor knows committed is in its log (unless only the lost nodes held it,
//     which no method can bring back);
//  3. the source decides (recoverplan.go): it refuses if a majority of its last configuration's voters is
//     reachable (that cluster needs no recovery, and recovering would split it; -raft-recover-force
//     overrides), and otherwise counts its whole log as committed and appends the conf changes that make
//     the configuration exactly the listed nodes; it publishes the decision, which the others follow;
//  4. every survivor moves to the new cluster ID of the decision, so that a lost node that comes back with
//     its old data is refused instead of rejoining the old history, and renames peers.json to peers.info.
//
// The decision is written to peers.decided before anything changes, and a restart resumes it, so a crash
// half-way leaves nothing half done. The other survivors keep their data and Raft IDs: the source leads
// and brings them to its log, and raft drops any entry of theirs that it lacks, which was never known
// committed. A survivor that knows an entry committed which the source lacks is left out and stops,
// saying how to rejoin empty.
//
// etcd's --force-new-cluster is the single-survivor case of this: it also commits the survivor's whole log
// and appends conf changes that remove every other member. etcd has no multi-survivor form; there, every
// member is restored from one snapshot.

const (
	peersFile       = "peers.json"
	peersDoneFile   = "peers.info"
	peersDecided    = "peers.decided"
	peersGatherTime = 5 * time.Minute
)

// errRecovery marks the errors that end a recovery at once (rather than a node not answering yet).
var errRecovery = errors.New("peers.json recovery")

// peerEntry is one node of peers.json, in rqlite's format.
type peerEntry struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	NonVoter bool   `json:"non_voter"`
}

// recoveryState is what a survivor tells the others while it recovers (nodecall.RecoverState, JSON): its log
// position from before it changed anything and, once made, the source's decision. It keeps answering
// after it is done, for slower peers.
type recoveryState struct {
	NodeID     string `json:"node_id"`
	RaftID     uint64 `json:"raft_id"`
	Digest     string `json:"digest"` // of the peers.json it recovers with
	LastTerm   uint64 `json:"last_term"`
	LastIndex  uint64 `json:"last_index"`
	Commit     uint64 `json:"commit"`
	CommitTerm uint64 `json:"commit_term"`
	// TermAt is the term of the entry at the index the caller asked about (0: not in the log); Compacted
	// means that index is at or below this node's snapshot (committed, so it agrees with every log).
	TermAt    uint64    `json:"term_at"`
	Compacted bool      `json:"compacted"`
	Decision  *decision `json:"decision,omitempty"`
}

// holds reports whether the node that answered holds the entry (index, term).
func (st recoveryState) holds(term uint64) bool {
	return st.Compacted || (term != 0 && st.TermAt == term)
}

// recoverer runs a peers.json recovery for its cluster, and serves the others its state meanwhile.
type recoverer struct {
	cl       *Cluster
	state    atomic.Pointer[recoveryState]
	decision atomic.Pointer[decision]
}

func (r *recoverer) peersPath() string { return filepath.Join(r.cl.cfg.DataDir, "raft", peersFile) }

// readPeersFile reads and checks peers.json.
func readPeersFile(path string) ([]peerEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return parsePeers(path, b)
}

// parsePeers checks the content of peers.json; path names it in errors.
func parsePeers(path string, b []byte) ([]peerEntry, error) {
	var peers []peerEntry
	if err := json.Unmarshal(b, &peers); err != nil {
		return nil, fmt.Errorf("%s: not a JSON array of {\"id\", \"address\", \"non_voter\"}: %w", path, err)
	}
	if len(peers) == 0 {
		return nil, fmt.Errorf("%s lists no nodes", path)
	}
	ids, addrs := map[string]bool{}, map[string]bool{}
	for _, p := range peers {
		if p.ID == "" || p.Address == "" {
			return nil, fmt.Errorf("%s: every node needs an \"id\" and an \"address\" (its Raft address)", path)
		}
		if ids[p.ID] || addrs[p.Address] {
			return nil, fmt.Errorf("%s lists node %s (address %s) twice", path, p.ID, p.Address)
		}
		ids[p.ID], addrs[p.Address] = true, true
	}
	return peers, nil
}

// peersDigest identifies a peers.json by its content, whatever its order and spacing.
func peersDigest(peers []peerEntry) string {
	sorted := slices.Clone(peers)
	slices.SortFunc(sorted, func(a, b peerEntry) int { return strings.Compare(a.ID, b.ID) })
	b, _ := json.Marshal(sorted)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// recoverFromPeersFile runs the recovery above if peers.json is present. It returns before raft starts.
func (r *recoverer) recoverFromPeersFile(ctx context.Context) error {
	path := r.peersPath()
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	if d, err := readDecision(r.decidedPath()); err != nil {
		return err
	} else if d != nil {
		r.cl.log.Warn("peers.json recovery: resuming the decision recorded before a restart", "source", d.Source)
		return r.carryOut(d)
	}
	peers, err := readPeersFile(path)
	if err != nil {
		return err
	}
	self := slices.IndexFunc(peers, func(p peerEntry) bool { return p.ID == r.cl.cfg.NodeID || p.Address == r.cl.cfg.RaftAddr })
	if self < 0 {
		return fmt.Errorf("%s does not list this node (id %s, address %s): list every node that survives, this one included", path, r.cl.cfg.NodeID, r.cl.cfg.RaftAddr)
	}
	mine, err := r.logPosition(peersDigest(peers))
	if err != nil {
		return err
	}
	r.state.Store(&mine)
	r.cl.log.Warn("peers.json found: recovering from a lost quorum; waiting for every listed node", "file", path, "nodes", len(peers))

	states, err := r.gatherRecoveryStates(ctx, peers, self, mine)
	if err != nil {
		return err
	}
	source, err := r.chooseSource(ctx, peers, states)
	if err != nil {
		return err
	}
	var d *decision
	if source.RaftID == r.cl.raftID {
		d, err = r.decide(ctx, peers, states)
		if err != nil {
			// The others follow this node's decision: give them a moment to read the refusal before it stops.
			r.decision.Store(&decision{Source: r.cl.cfg.NodeID, Refused: err.Error()})
			r.cl.sleep(5 * time.Second)
			return err
		}
		r.decision.Store(d)
	} else if d, err = r.followSource(ctx, source, addressOf(peers, source.NodeID)); err != nil {
		return err
	}
	if err := writeDecision(r.decidedPath(), d); err != nil {
		return err
	}
	return r.carryOut(d)
}

// logPosition is this node's part of the recovery: its log's position.
func (r *recoverer) logPosition(digest string) (recoveryState, error) {
	hs, _, err := r.cl.rlog.InitialState()
	if err != nil {
		return recoveryState{}, err
	}
	last, _ := r.cl.rlog.LastIndex()
	lastTerm, err := r.cl.rlog.Term(last)
	if err != nil {
		return recoveryState{}, fmt.Errorf("%w: term of the last entry %d: %w", errRecovery, last, err)
	}
	commitTerm, err := r.cl.rlog.Term(hs.GetCommit())
	if err != nil {
		return recoveryState{}, fmt.Errorf("%w: term of the committed entry %d: %w", errRecovery, hs.GetCommit(), err)
	}
	return recoveryState{NodeID: r.cl.cfg.NodeID, RaftID: r.cl.raftID, Digest: digest, LastTerm: lastTerm, LastIndex: last,
		Commit: hs.GetCommit(), CommitTerm: commitTerm}, nil
}

// serveRecoveryState answers another survivor: this node's position, its term at the index asked, and
// its decision if it is the source and has made it.
func (r *recoverer) serveRecoveryState(req []byte) ([]byte, error) {
	st := r.state.Load()
	if st == nil {
		return nil, errors.New("this node is not recovering with peers.json")
	}
	var ask struct {
		Index uint64 `json:"index"`
	}
	if err := json.Unmarshal(req, &ask); err != nil {
		return nil, fmt.Errorf("decode recovery state request: %w", err)
	}
	out := *st
	out.TermAt, out.Compacted = r.termAt(ask.Index)
	out.Decision = r.decision.Load()
	return json.Marshal(out)
}

// termAt is the term of this node's entry at index, or whether that index is behind its snapshot.
func (r *recoverer) termAt(index uint64) (term uint64, compacted bool) {
	snap, _ := r.cl.rlog.Snapshot()
	if index < snap.GetMetadata().GetIndex() {
		return 0, true
	}
	t, _ := r.cl.rlog.Term(index)
	return t, false
}

// askRecoveryState asks the survivor at addr for its state and its term at index.
func (r *recoverer) askRecoveryState(ctx context.Context, addr string, index uint64) (recoveryState, error) {
	req, _ := json.Marshal(map[string]uint64{"index": index})
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	b, err := r.cl.tr.Call(cctx, addr, nodecall.RecoverState, req)
	if err != nil {
		return recoveryState{}, err
	}
	var st recoveryState
	if err := json.Unmarshal(b, &st); err != nil {
		return recoveryState{}, fmt.Errorf("decode recovery state from %s: %w", addr, err)
	}
	return st, nil
}

// gatherRecoveryStates waits until every listed node answers with the same peers.json.
func (r *recoverer) gatherRecoveryStates(ctx context.Context, peers []peerEntry, self int, mine recoveryState) (map[string]recoveryState, error) {
	states := map[string]recoveryState{peers[self].ID: mine}
	err := r.untilAll(ctx, peers, func(p peerEntry) (bool, error) {
		if _, ok := states[p.ID]; ok {
			return true, nil
		}
		st, err := r.askRecoveryState(ctx, p.Address, 0)
		switch {
		case err != nil:
			return false, err
		case st.Digest != mine.Digest:
			return false, fmt.Errorf("%w: node %s at %s recovers with a different peers.json: put the same file on every listed node", errRecovery, p.ID, p.Address)
		case st.NodeID != p.ID:
			return false, fmt.Errorf("%w: the node at %s is %s, not %s as peers.json says", errRecovery, p.Address, st.NodeID, p.ID)
		}
		states[p.ID] = st
		return true, nil
	})
	return states, err
}

// untilAll calls ask for every listed node until each has answered true, for up to peersGatherTime,
// saying every 10 s which nodes it still waits for. An answer of false with an error that is not a
// network error ends the wait at once.
func (r *recoverer) untilAll(ctx context.Context, peers []peerEntry, ask func(peerEntry) (bool, error)) error {
	deadline := time.Now().Add(peersGatherTime)
	said := time.Now()
	for {
		var missing []string
		for _, p := range peers {
			ok, err := ask(p)
			if ok {
				continue
			}
			if errors.Is(err, errRecovery) {
				return err
			}
			missing = append(missing, fmt.Sprintf("%s (%v)", p.ID, err))
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: these listed nodes did not answer within %s: %s; start every listed node with the same peers.json, or list only the nodes that survive", errRecovery,
				peersGatherTime, strings.Join(missing, "; "))
		}
		if time.Since(said) > 10*time.Second {
			said = time.Now()
			r.cl.log.Warn("peers.json recovery: waiting for listed nodes", "missing", strings.Join(missing, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.cl.stopc:
			return errcode.ErrStopped
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// followSource (a survivor that is not the source) waits for the source's decision and checks that the
// source's log holds the entry this node knows committed last, so that raft can bring this node up to
// it by dropping only entries that were never known committed.
func (r *recoverer) followSource(ctx context.Context, source recoveryState, addr string) (*decision, error) {
	mine := r.state.Load()
	var d *decision
	var agrees bool
	err := r.untilAll(ctx, []peerEntry{{ID: source.NodeID, Address: addr}}, func(peerEntry) (bool, error) {
		st, err := r.askRecoveryState(ctx, addr, mine.Commit)
		if err != nil {
			return false, err
		}
		if st.Decision == nil {
			return false, errors.New("has not decided yet")
		}
		d, agrees = st.Decision, mine.Commit == 0 || st.holds(mine.CommitTerm)
		return true, nil
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: waiting for the decision of %s, the survivor with the most up-to-date log: %w", errRecovery, source.NodeID, err)
	case d.Refused != "":
		return nil, fmt.Errorf("%w: %s, the survivor with the most up-to-date log, refused: %s", errRecovery, source.NodeID, d.Refused)
	case !agrees:
		return nil, fmt.Errorf("%w: this node knows entries committed that %s, the survivor chosen to carry the cluster's history, lacks: it cannot rejoin with its data. Move its data directory aside and start it with -join %s to rejoin empty", errRecovery,
			source.NodeID, addr)
	}
	return d, nil
}

func addressOf(peers []peerEntry, nodeID string) string {
	if i := slices.IndexFunc(peers, func(p peerEntry) bool { return p.ID == nodeID }); i >= 0 {
		return peers[i].Address
	}
	return ""
}
