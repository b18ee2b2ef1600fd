package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/raftlog"
)

// raftConfig is the consensus configuration (reference/etcd-raft-v3.7.md §A.3).
func (s *Store) raftConfig() *raft.Config {
	_, heartbeat, election := s.cfg.ticks()
	return &raft.Config{
		ID:                        s.raftID,
		ElectionTick:              election,
		HeartbeatTick:             heartbeat,
		Storage:                   s.storage,
		Applied:                   s.applied.index(),
		MaxSizePerMsg:             1 << 20,
		MaxCommittedSizePerReady:  16 << 20,
		MaxUncommittedEntriesSize: 1 << 30,
		MaxInflightMsgs:           256,
		MaxInflightBytes:          64 << 20,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		StepDownOnRemoval:         true,
		// Followers never forward proposals inside raft: the API forwards whole requests to the leader, so a
		// caller always learns whether its write was applied.
		DisableProposalForwarding: true,
		Logger:                    &raftLogger{log: cmp.Or(s.cfg.RaftLogger, s.log)},
	}
}

// startRaft creates the RawNode (bootstrapping it with peers, if given) and starts the loops.
func (s *Store) startRaft(peers []raft.Peer) error {
	rn, err := raft.NewRawNode(s.raftConfig())
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	if len(peers) > 0 {
		if err := rn.Bootstrap(peers); err != nil {
			return fmt.Errorf("bootstrap raft: %w", err)
		}
	}
	tick, _, _ := s.cfg.ticks()
	s.running.Store(true)
	s.loops.Add(2)
	// A cluster of one need not wait an election timeout to elect itself.
	go s.runRaft(rn, tick, len(peers) == 1)
	go s.runApply()
	return nil
}

// raftLoop is the state only the raft goroutine touches.
type raftLoop struct {
	rn *raft.RawNode
	// proposals wait for the end of the round; unindexed are accepted proposals whose log index raft has
	// not shown us yet.
	proposals []*proposal
	unindexed []*proposal
	reads     readBatches
	ticks     uint64
	promo     promotion
	// faultHandOver is the apply fault this leader last tried to hand leadership over for (fault.go).
	faultHandOver *applyFault
}

func (s *Store) runRaft(rn *raft.RawNode, tickEvery time.Duration, campaign bool) {
	defer s.loops.Done()
	ticker := time.NewTicker(tickEvery)
	defer ticker.Stop()
	l := &raftLoop{rn: rn, reads: newReadBatches()}
	for campaign && rn.HasReady() {
		// Raft campaigns only once the bootstrap configuration is applied, which the first Ready does.
		if !s.handleReady(l, rn.Ready()) {
			return
		}
	}
	if campaign {
		if err := rn.Campaign(); err != nil {
			s.log.Warn("campaign after bootstrap", "err", err)
		}
	}
	for {
		select {
		case <-s.stopc:
			l.reads.failAll(ErrStopped)
			for _, p := range append(l.unindexed, l.proposals...) {
				p.fail(ErrStopped)
			}
			return
		case <-ticker.C:
			rn.Tick()
			l.ticks++
			s.onTick(l)
		case msgs := <-s.recvc:
			s.step(rn, msgs)
		case p := <-s.propc:
			l.proposals = append(l.proposals, p)
		case r := <-s.readc:
			l.reads.add(r)
		case f := <-s.actc:
			f(rn)
		}
		s.drain(l)
		// Proposals go to raft last, after every message of this round: a message stepped after a proposal
		// could truncate it before the Ready, while raft has already queued it for the followers.
		for _, p := range l.proposals {
			s.propose(l, p)
		}
		l.proposals = l.proposals[:0]
		s.maybePromote(l)
		for {
			if l.reads.hasPending() && l.reads.mayStart(time.Now()) {
				s.issueReadIndex(l)
			}
			if !rn.HasReady() {
				break
			}
			if !s.handleReady(l, rn.Ready()) {
				return
			}
		}
	}
}

// drain takes everything already waiting on the inputs, so that one Ready, and one fsync, covers it all.
func (s *Store) drain(l *raftLoop) {
	for i := 0; i < 4096; i++ {
		select {
		case msgs := <-s.recvc:
			s.step(l.rn, msgs)
		case p := <-s.propc:
			l.proposals = append(l.proposals, p)
		case r := <-s.readc:
			l.reads.add(r)
		case f := <-s.actc:
			f(l.rn)
		default:
			return
		}
	}
}

func (s *Store) step(rn *raft.RawNode, msgs []*raftpb.Message) {
	for _, m := range msgs {
		if m.GetTo() != s.raftID {
			continue // addressed to an identity this data directory does not have
		}
		if err := rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
			s.log.Debug("raft step", "type", m.GetType().String(), "from", m.GetFrom(), "err", err)
		}
	}
}

func (s *Store) propose(l *raftLoop, p *proposal) {
	if raft.StateType(s.raftState.Load()) != raft.StateLeader {
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
	s.proposals.Add(1)
	if p.cc != nil {
		// raft takes no other conf change until this one is applied (promote.go).
		l.promo.confPending = max(l.promo.confPending, s.lastIndex.Load()+1)
	}
}

// handleReady processes one Ready in the order the raft contract requires. It returns false if the node
// must stop (its storage failed).
func (s *Store) handleReady(l *raftLoop, rd raft.Ready) bool {
	wasLeader := raft.StateType(s.raftState.Load()) == raft.StateLeader
	if rd.SoftState != nil {
		if rd.SoftState.Lead != s.leader.Load() {
			// raft forgets the read requests it had pending when leadership changes; retry them now rather
			// than when they time out. A change counts once a new leader is known.
			l.reads.retryInflight()
			if rd.SoftState.Lead != raft.None {
				s.leaderChanges.Add(1)
			}
		}
		s.leader.Store(rd.SoftState.Lead)
		s.raftState.Store(int32(rd.SoftState.RaftState))
	}
	if rd.HardState != nil {
		s.term.Store(rd.HardState.GetTerm())
		s.commit.Store(rd.HardState.GetCommit())
	}
	leader := raft.StateType(s.raftState.Load()) == raft.StateLeader
	if leader {
		// A leader may send before its own write (Raft thesis §10.2.1): its disk and the followers' work in
		// parallel. Responses that depend on durable state are not among a leader's messages.
		s.tr.Send(rd.Messages)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := s.installSnapshot(rd.Snapshot); err != nil {
			s.fail(err)
			return false
		}
	}
	full := s.logFull.Load()
	if !s.save(l, rd) {
		return false
	}
	if full || s.logFull.Load() != full {
		st := l.rn.BasicStatus()
		s.leader.Store(st.Lead)
		s.raftState.Store(int32(st.RaftState))
	}
	s.indexProposals(l, rd.Entries)
	if n := len(rd.Entries); n > 0 {
		s.lastIndex.Store(rd.Entries[n-1].GetIndex())
	}
	l.promo.noteReady(&rd, leader && !wasLeader, s.lastIndex.Load())
	if !leader {
		s.tr.Send(rd.Messages)
	}
	for _, rs := range rd.ReadStates {
		l.reads.resolve(rs)
	}
	if len(rd.CommittedEntries) > 0 {
		task := applyTask{entries: rd.CommittedEntries}
		for _, e := range rd.CommittedEntries {
			if e.GetType() == raftpb.EntryConfChange || e.GetType() == raftpb.EntryConfChangeV2 {
				task.confs = append(task.confs, s.applyConfChange(l.rn, e))
			}
		}
		select {
		case s.applyc <- task:
		case <-s.stopc:
			return false
		}
	}
	l.rn.Advance(rd)
	return true
}

// save persists entries and hard state. A full disk is waited out: the log is left as it was, and raft
// must not go on as if the entries were durable, so the node neither acknowledges nor votes (nor, as a
// leader, sends heartbeats, so the others elect a leader that can write) until there is room again. Any
// other failure stops the node: the log refuses further writes after one (a failed fsync may have lost
// data), and only a restart, which reads the disk again, can continue safely.
//
// While it waits, no caller is left hanging: requests under way are answered at once (their fate is
// unknown), and requests that arrive are refused with ErrDiskFull, so clients can go to another node.
func (s *Store) save(l *raftLoop, rd raft.Ready) bool {
	for {
		start := time.Now()
		err := s.rlog.Save(rd.HardState, rd.Entries, rd.MustSync)
		if err == nil && rd.MustSync && s.cfg.ObserveFsync != nil {
			s.cfg.ObserveFsync(time.Since(start))
		}
		if err == nil {
			if s.logFull.Swap(false) {
				s.log.Info("Raft log writable again")
			}
			return true
		}
		if !errors.Is(err, raftlog.ErrNoSpace) {
			s.fail(fmt.Errorf("write the Raft log: %w", err))
			return false
		}
		if !s.logFull.Swap(true) {
			s.log.Error("disk full: cannot write the Raft log; this node takes no part in the cluster until space is freed", "err", err)
			// Its loop is stuck here, so whatever it believed about leadership goes stale: it claims none
			// (no weak reads served from data that no longer moves), until raft runs again.
			s.leader.Store(raft.None)
			s.raftState.Store(int32(raft.StateFollower))
			for _, p := range l.unindexed {
				p.fail(errDiskFullInFlight)
			}
			s.waiters.failAll(errDiskFullInFlight)
			l.reads.failAll(ErrDiskFull)
		}
		if !s.refuseWhileFull(500 * time.Millisecond) {
			return false
		}
	}
}

// refuseWhileFull answers, for the time given, every proposal and read that arrives with ErrDiskFull:
// the raft loop cannot take them while its log cannot be written. It returns false if the store stops.
func (s *Store) refuseWhileFull(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-s.stopc:
			return false
		case <-timer.C:
			return true
		case p := <-s.propc:
			p.fail(ErrDiskFull)
		case r := <-s.readc:
			r.done <- readResult{err: ErrDiskFull}
		}
	}
}

// indexProposals learns the log index of each accepted proposal from the entries raft appended. Each
// entry is matched by content (raft appends clones of what it was given): a command by its proposer and
// request id, a conf change by its encoding. A conf change with no entry was replaced by raft (another was
// pending) and never applies; a command with no entry has an unknown fate, since raft may have sent it.
func (s *Store) indexProposals(l *raftLoop, ents []*raftpb.Entry) {
	if len(l.unindexed) == 0 {
		return
	}
	for _, e := range ents {
		for i, p := range l.unindexed {
			if p != nil && p.matches(e, s.raftID) {
				s.waiters.register(e.GetIndex(), p)
				l.unindexed[i] = nil
				break
			}
		}
	}
	for _, p := range l.unindexed {
		switch {
		case p == nil:
		case p.cc != nil:
			p.fail(errConfDropped) // raft replaced it with an empty entry: another change was pending
		default:
			p.fail(ErrOutcomeUnknown)
		}
	}
	l.unindexed = l.unindexed[:0]
}

// applyConfChange makes raft apply a committed conf change at once (raft's own configuration), updates the
// membership and the transport's peers, and returns what the apply loop must record with the entry.
func (s *Store) applyConfChange(rn *raft.RawNode, e *raftpb.Entry) appliedConf {
	cc, changes, added, err := decodeConfChange(e)
	if err != nil {
		// Every node decodes the same bytes: skipping it everywhere keeps replicas identical.
		s.log.Error("ignoring undecodable conf change", "index", e.GetIndex(), "err", err)
		return appliedConf{index: e.GetIndex(), cs: s.members.confState(), membership: s.members.encode()}
	}
	wasVoter := isVoter(s.members.confState(), s.raftID)
	cs := s.members.confState()
	if err := checkConfChange(rn, cc); err != nil {
		// Not handed to raft (confcheck.go): the configuration stays as it is, on every node alike.
		s.log.Warn("cancelling a membership change that would leave an invalid configuration", "index", e.GetIndex(), "err", err)
		changes, added = nil, nil
	} else {
		cs = rn.ApplyConfChange(cc)
	}
	s.members.apply(changes, added, cs)
	// Entries the database already held are handed out again after a restart: not news.
	replayed := e.GetIndex() <= s.openedAt
	for _, c := range changes {
		id := c.GetNodeId()
		if id == s.raftID {
			switch {
			case replayed:
			case c.GetType() == raftpb.ConfChangeRemoveNode:
				s.log.Warn("this node was removed from the cluster")
			case !wasVoter && isVoter(cs, s.raftID) && len(cs.GetVoters()) > 1:
				s.log.Info("joined the cluster as a voter", "voters", len(cs.GetVoters()))
			}
			continue
		}
		if c.GetType() == raftpb.ConfChangeRemoveNode {
			s.tr.RemovePeer(id)
		} else if m, ok := s.members.get(id); ok {
			s.tr.SetPeer(id, m.GetNodeId(), m.GetRaftAddr())
		}
	}
	level := slog.LevelInfo
	if replayed {
		level = slog.LevelDebug
	}
	s.log.Log(context.Background(), level, "membership changed", "index", e.GetIndex(), "voters", s.members.nodeIDs(cs.GetVoters()), "learners", s.members.nodeIDs(cs.GetLearners()))
	return appliedConf{index: e.GetIndex(), cs: cs, membership: s.members.encode()}
}

func (s *Store) onTick(l *raftLoop) {
	l.reads.expire(time.Now())
	s.handOverIfFaulty(l)
}

// issueReadIndex starts one ReadIndex round for every read that arrived since the last round. Reads that
// arrive later go to a later round: the index a round confirms is only safe for reads begun before it.
// A round starts only when none is in flight (see mayStart), so that under load each round serves many
// reads, as etcd's read loop does.
func (s *Store) issueReadIndex(l *raftLoop) {
	if s.leader.Load() == raft.None {
		l.reads.failPending(ErrNoLeader)
		return
	}
	ctx, n := l.reads.startRound()
	s.readRounds.Add(1)
	s.readsInRounds.Add(uint64(n))
	l.rn.ReadIndex(ctx)
}

// proposal is a command (or conf change) waiting to be committed and applied.
type proposal struct {
	data []byte
	cc   *raftpb.ConfChangeV2
	id   uint64
	done chan proposalResult
}

type proposalResult struct {
	index uint64
	res   applyResult
	err   error
}

func (p *proposal) fail(err error) {
	select {
	case p.done <- proposalResult{err: err}:
	default:
	}
}

// matches reports whether e is the entry raft appended for p.
func (p *proposal) matches(e *raftpb.Entry, self uint64) bool {
	if p.cc != nil {
		return e.GetType() == raftpb.EntryConfChangeV2 && bytes.Equal(e.GetData(), p.data)
	}
	if e.GetType() != raftpb.EntryNormal || len(e.GetData()) == 0 {
		return false
	}
	proposer, id := commandID(e.GetData())
	return proposer == self && id == p.id
}

// commandID reads the proposer and request id of an encoded command.Command without decoding the rest.
func commandID(data []byte) (proposer, id uint64) {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return 0, 0
		}
		data = data[n:]
		if typ == protowire.VarintType && (num == 2 || num == 3) {
			v, m := protowire.ConsumeVarint(data)
			if m < 0 {
				return 0, 0
			}
			if num == 2 {
				proposer = v
			} else {
				id = v
			}
			data = data[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, data)
		if m < 0 {
			return 0, 0
		}
		data = data[m:]
	}
	return proposer, id
}

// readCtx encodes a read round number as raft's request context.
func readCtx(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}
