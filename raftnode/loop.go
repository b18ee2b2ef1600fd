package raftnode

import (
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// loop is the raft goroutine, and the state only it touches.
type loop struct {
	n  *Node
	rn *raft.RawNode
	// proposals wait for the end of the round; unindexed are accepted proposals whose log index raft has
	// not shown us yet.
	proposals []*proposal
	unindexed []*proposal
	reads     readBatches
	conf      confTracker
	turn      Turn
}

func (n *Node) run(rn *raft.RawNode, campaign bool) {
	defer n.loops.Done()
	l := &loop{n: n, rn: rn, reads: newReadBatches()}
	l.turn = Turn{RawNode: rn, n: n, l: l}
	l.run(campaign)
}

func (l *loop) run(campaign bool) {
	rn := l.rn
	ticker := time.NewTicker(l.n.cfg.Tick)
	defer ticker.Stop()
	for campaign && rn.HasReady() {
		// Raft campaigns only once the bootstrap configuration is applied, which the first Ready does.
		if !l.handleReady(rn.Ready()) {
			return
		}
	}
	if campaign {
		if err := rn.Campaign(); err != nil {
			l.n.log.Warn("campaign after bootstrap", "err", err)
		}
	}
	for {
		select {
		case <-l.n.stopc:
			l.reads.failAll(ErrStopped)
			for _, p := range append(l.unindexed, l.proposals...) {
				p.fail(ErrStopped)
			}
			return
		case <-ticker.C:
			rn.Tick()
			l.reads.expire(time.Now())
			if l.n.cfg.OnTick != nil {
				l.n.cfg.OnTick(&l.turn)
			}
		case msgs := <-l.n.in.recvc:
			l.step(msgs)
		case p := <-l.n.in.propc:
			l.proposals = append(l.proposals, p)
		case r := <-l.n.in.readc:
			l.reads.add(r)
		case f := <-l.n.in.actc:
			f(rn)
		}
		l.drain()
		// Proposals go to raft last, after every message of this round: a message stepped after a proposal
		// could truncate it before the Ready, while raft has already queued it for the followers.
		for _, p := range l.proposals {
			l.propose(p)
		}
		l.proposals = l.proposals[:0]
		if l.n.cfg.OnTurn != nil {
			l.n.cfg.OnTurn(&l.turn)
		}
		for {
			if l.reads.hasPending() && l.reads.mayStart(time.Now()) {
				l.issueReadIndex()
			}
			if !rn.HasReady() {
				break
			}
			if !l.handleReady(rn.Ready()) {
				return
			}
		}
	}
}

// drain takes everything already waiting on the inputs, so that one Ready, and one fsync, covers it all.
func (l *loop) drain() {
	for i := 0; i < 4096; i++ {
		select {
		case msgs := <-l.n.in.recvc:
			l.step(msgs)
		case p := <-l.n.in.propc:
			l.proposals = append(l.proposals, p)
		case r := <-l.n.in.readc:
			l.reads.add(r)
		case f := <-l.n.in.actc:
			f(l.rn)
		default:
			return
		}
	}
}

func (l *loop) step(msgs []*raftpb.Message) {
	for _, m := range msgs {
		if m.GetTo() != l.n.cfg.ID {
			continue // addressed to an identity this data directory does not have
		}
		if err := l.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
			l.n.log.Debug("raft step", "type", m.GetType().String(), "from", fmt.Sprintf("%x", m.GetFrom()), "err", err)
		}
	}
}

func (l *loop) propose(p *proposal) {
	if l.n.State() != raft.StateLeader {
		p.fail(ErrNotLeader)
		return
	}
	var err error
	if p.cc != nil {
		// Kept to recognise the entry: raft appends exactly this encoding (confChangeToMsg).
		if p.data, err = proto.Marshal(p.cc); err == nil {
			err = l.rn.ProposeConfChange(p.cc)
		}
	} else {
		err = l.rn.Propose(p.data)
	}
	if err != nil {
		// Dropped: not leader any more, a leadership transfer is under way, or too much is uncommitted.
		p.fail(fmt.Errorf("%w: %v", ErrNotLeader, err))
		return
	}
	l.unindexed = append(l.unindexed, p)
	l.n.stats.proposals.Add(1)
	if p.cc != nil {
		l.conf.proposed(l.n.state.lastIndex.Load() + 1)
	}
}

// setLeader records raft's view of the leader and this node's role, and reports a new leader.
func (l *loop) setLeader(lead uint64, state raft.StateType) {
	changed := lead != l.n.state.leader.Load()
	l.n.state.leader.Store(lead)
	l.n.state.raftState.Store(int32(state))
	if changed && l.n.cfg.OnLeaderChange != nil {
		l.n.cfg.OnLeaderChange(lead, l.rn.BasicStatus().GetTerm())
	}
}

// handleReady processes one Ready in the order the raft contract requires. It returns false if the node
// must stop (its storage failed).
func (l *loop) handleReady(rd raft.Ready) bool {
	wasLeader := l.n.State() == raft.StateLeader
	if rd.SoftState != nil {
		if rd.SoftState.Lead != l.n.state.leader.Load() {
			// raft forgets the read requests it had pending when leadership changes; retry them now rather
			// than when they time out. A change counts once a new leader is known.
			l.reads.retryInflight()
			if rd.SoftState.Lead != raft.None {
				l.n.stats.leaderChanges.Add(1)
			}
		}
		l.setLeader(rd.SoftState.Lead, rd.SoftState.RaftState)
	}
	if rd.HardState != nil {
		l.n.state.term.Store(rd.HardState.GetTerm())
		l.n.state.commit.Store(rd.HardState.GetCommit())
	}
	leader := l.n.State() == raft.StateLeader
	if leader {
		// A leader may send before its own write, so that its disk and the followers' work in
		// parallel. Responses that depend on durable state are not among a leader's messages.
		l.n.cfg.Transport.Send(rd.Messages)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := l.installSnapshot(rd.Snapshot); err != nil {
			l.n.cfg.Fail(err)
			return false
		}
	}
	full := l.n.logFull.Load()
	if !l.save(rd) {
		return false
	}
	if full || l.n.logFull.Load() != full {
		st := l.rn.BasicStatus()
		l.setLeader(st.Lead, st.RaftState)
	}
	l.indexProposals(rd.Entries)
	if k := len(rd.Entries); k > 0 {
		l.n.state.lastIndex.Store(rd.Entries[k-1].GetIndex())
	}
	l.conf.noteReady(&rd, leader && !wasLeader, l.n.state.lastIndex.Load())
	if !leader {
		l.n.cfg.Transport.Send(rd.Messages)
	}
	for _, rs := range rd.ReadStates {
		l.reads.resolve(rs)
	}
	if len(rd.CommittedEntries) > 0 {
		task := Apply{Entries: rd.CommittedEntries}
		for _, e := range rd.CommittedEntries {
			if e.GetType() == raftpb.EntryConfChange || e.GetType() == raftpb.EntryConfChangeV2 {
				task.Confs = append(task.Confs, l.n.cfg.ConfChange(l.rn, e))
			}
		}
		select {
		case l.n.applyc <- task:
		case <-l.n.stopc:
			return false
		}
	}
	l.rn.Advance(rd)
	return true
}

// issueReadIndex starts one ReadIndex round for every read that arrived since the last round. Reads that
// arrive later go to a later round: the index a round confirms is only safe for reads begun before it.
// A round starts only when none is in flight (see mayStart), so that under load each round serves many
// reads, as etcd's read loop does.
func (l *loop) issueReadIndex() {
	if l.n.state.leader.Load() == raft.None {
		l.reads.failPending(ErrNoLeader)
		return
	}
	ctx, k := l.reads.startRound()
	l.n.stats.readRounds.Add(1)
	l.n.stats.readsInRounds.Add(uint64(k))
	l.rn.ReadIndex(ctx)
}

// Apply is what the raft loop hands the state machine, in log order: committed entries (with what raft
// decided for the conf changes among them), or a snapshot to install before any later entry.
type Apply struct {
	Entries []*raftpb.Entry
	Confs   []AppliedConf
	Install *Install
}

// AppliedConf is the outcome of one conf change entry: the ConfState and the membership after it.
type AppliedConf struct {
	Index      uint64
	CS         *raftpb.ConfState
	Membership []byte
}

// Turn is the raft loop's state as its hooks (Config.OnTurn, OnTick) see it.
type Turn struct {
	RawNode *raft.RawNode
	n       *Node
	l       *loop
}

// ConfChangeReady reports whether raft would take a conf change now: no other is pending.
func (t *Turn) ConfChangeReady() bool { return t.l.conf.ready() }

// ProposeConfChange proposes cc, which no caller waits for; it reports whether raft took it.
func (t *Turn) ProposeConfChange(cc *raftpb.ConfChangeV2) bool {
	if err := t.RawNode.ProposeConfChange(cc); err != nil {
		return false
	}
	t.l.conf.proposed(t.n.state.lastIndex.Load() + 1)
	return true
}
