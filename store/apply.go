package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/errcode"
)

// applyTask is what the raft loop hands the apply loop, in log order: committed entries (with what raft
// decided for the conf changes among them), or a snapshot to install before any later entry.
type applyTask struct {
	entries []*raftpb.Entry
	confs   []appliedConf
	install *installRequest
}

// appliedConf is the outcome of one conf change entry: the ConfState and the membership after it.
type appliedConf struct {
	index      uint64
	cs         *raftpb.ConfState
	membership []byte
}

// applyResult is what a request produced when applied.
type applyResult struct {
	results []db.Result
	err     string
}

// snapshotRequest asks the apply loop to compact the log now (the /snapshot endpoint).
type snapshotRequest struct {
	trailing uint64
	done     chan error
}

func (s *Store) runApply() {
	defer s.loops.Done()
	ticker := time.NewTicker(s.cfg.SnapshotInterval)
	defer ticker.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case t := <-s.applyc:
			tasks := []applyTask{t}
			for len(tasks) < 64 {
				select {
				case t := <-s.applyc:
					tasks = append(tasks, t)
					continue
				default:
				}
				break
			}
			if !s.applyTasks(tasks) {
				return
			}
		case <-ticker.C:
			if err := s.compact(false, s.cfg.TrailingLogs); err != nil && !errors.Is(err, errNothingToSnapshot) {
				s.log.Error("log compaction failed", "err", err)
			}
		case r := <-s.snapc:
			r.done <- s.compact(true, r.trailing)
		case r := <-s.bootc:
			r.done <- s.boot(r.path)
		}
	}
}

// batch collects the ops of consecutive entries so that they are applied in one transaction.
type batch struct {
	ops     []db.Op
	entries []*raftpb.Entry // the entry of each op
	last    *raftpb.Entry   // last entry processed, applied or skipped
	cs      *raftpb.ConfState
}

// applyTasks applies tasks in order. It returns false if the node is stopping.
func (s *Store) applyTasks(tasks []applyTask) bool {
	processed, _, cs := s.applied.snapshot()
	dbApplied := s.db.State().AppliedIndex
	b := &batch{cs: cs}
	for _, t := range tasks {
		if t.install != nil {
			if !s.flush(b) {
				return false
			}
			t.install.done <- s.install(t.install.snap, t.install.path)
			processed = s.applied.index()
			dbApplied = s.db.State().AppliedIndex
			b.cs = s.applied.confState()
			continue
		}
		confs := t.confs
		for _, e := range t.entries {
			i := e.GetIndex()
			isConf := e.GetType() == raftpb.EntryConfChange || e.GetType() == raftpb.EntryConfChangeV2
			var conf appliedConf
			if isConf && len(confs) > 0 {
				conf, confs = confs[0], confs[1:]
			}
			if i <= processed {
				continue
			}
			processed = i
			if isConf {
				b.cs = conf.cs
			}
			if i <= dbApplied {
				// Handed out again after a restart; the database already holds it.
				b.last = e
				continue
			}
			op := db.Op{Index: i, Term: e.GetTerm()}
			if isConf {
				op.Membership = conf.membership
			} else if len(e.GetData()) > 0 {
				var cmd command.Command
				if err := proto.Unmarshal(e.GetData(), &cmd); err != nil {
					// Every replica holds the same bytes, so every replica skips it alike.
					s.log.Error("ignoring undecodable log entry", "index", i, "err", err)
				} else if cmd.GetType() == command.Command_TYPE_LOAD {
					// The entries before it first; it counts as applied only once the file is in place.
					if !s.flush(b) {
						return false
					}
					res, ok := s.applyLoad(e, &cmd)
					if !ok {
						return false
					}
					s.applied.set(i, e.GetTerm(), b.cs)
					s.deliver(e, res)
					dbApplied = i
					continue
				} else if cmd.GetType() == command.Command_TYPE_REQUEST && !isStrongRead(&cmd) {
					op.Request = cmd.GetRequest()
					op.Env = db.Env{NowUnixMs: cmd.GetNowUnixMs(), Seed: cmd.GetSeed()}
				}
			}
			b.ops = append(b.ops, op)
			b.entries = append(b.entries, e)
			b.last = e
		}
	}
	if !s.flush(b) {
		return false
	}
	if s.bootPending && s.applied.index() >= s.db.State().AppliedIndex {
		// Restarted after a boot whose compaction did not happen: do it now, before anyone joins.
		if err := s.finishBoot(); err != nil {
			s.log.Error("finishing an interrupted boot", "err", err)
		} else {
			s.bootPending = false
		}
	}
	return true
}

// isStrongRead reports a strong read's entry. It only marks the read's place in the log: every replica
// records it as applied without running anything, and the proposer runs the read itself once it has
// applied the entry (Query), so that a slow or endless query never holds up the apply loop.
func isStrongRead(cmd *command.Command) bool {
	return cmd.GetRequest().GetMode() == command.Mode_MODE_QUERY
}

// flush applies the batch's ops in one transaction, wakes their callers, and publishes the new applied
// index. A failure of the environment (disk full) is retried until it clears: an entry is never skipped
// (fault.go).
func (s *Store) flush(b *batch) bool {
	if b.last == nil {
		return true
	}
	ops, entries := b.ops, b.entries
	var failures applyFailures
	for len(ops) > 0 {
		results, err := s.db.Apply(ops)
		// Whatever was committed is delivered, even if a later part of the batch failed.
		for k, r := range results {
			s.deliver(entries[k], applyResult{results: r.Results, err: r.Error})
		}
		ops, entries = ops[len(results):], entries[len(results):]
		if err == nil {
			break
		}
		s.applyFailed(&failures, ops[0].Index, err)
		if !s.sleepUnlessStopped(applyRetryEvery) {
			return false
		}
	}
	s.applyRecovered(&failures)
	s.applied.set(b.last.GetIndex(), b.last.GetTerm(), b.cs)
	if b.last.GetIndex() >= s.commit.Load() {
		s.caughtUp.Store(time.Now().UnixNano())
	}
	b.ops, b.entries, b.last = b.ops[:0], b.entries[:0], nil
	return true
}

// deliver wakes the caller waiting for e, if this node proposed it.
func (s *Store) deliver(e *raftpb.Entry, res applyResult) {
	p := s.waiters.take(e.GetIndex())
	if p == nil {
		return
	}
	if !p.matches(e, s.raftID) {
		// Another leader's entry took this index: ours was never committed.
		p.fail(ErrLeaderLost)
		return
	}
	select {
	case p.done <- proposalResult{index: e.GetIndex(), res: res}:
	default:
	}
}

// applyLoad replaces the database with the SQLite file a LOAD entry carries. A file that every replica
// refuses alike (not a database) leaves the database as it was and is the entry's result; a failing disk
// is retried.
func (s *Store) applyLoad(e *raftpb.Entry, cmd *command.Command) (applyResult, bool) {
	path := filepath.Join(s.snapDir(), fmt.Sprintf("load-%d.db", e.GetIndex()))
	defer os.Remove(path)
	var failures applyFailures
	defer s.applyRecovered(&failures)
	for {
		err := gunzipTo(path, cmd.GetLoad())
		if errors.Is(err, errBadLoad) {
			return s.refuseLoad(e, err)
		}
		if err == nil {
			err = s.db.Load(path, e.GetIndex(), e.GetTerm())
		}
		if err == nil {
			return applyResult{}, true
		}
		if errors.Is(err, db.ErrNotADatabase) {
			return s.refuseLoad(e, err)
		}
		if errors.Is(err, db.ErrUnusable) {
			s.fail(err)
			return applyResult{}, false
		}
		s.applyFailed(&failures, e.GetIndex(), fmt.Errorf("load the database the log carries: %w", err))
		if !s.sleepUnlessStopped(applyRetryEvery) {
			return applyResult{}, false
		}
	}
}

func (s *Store) refuseLoad(e *raftpb.Entry, cause error) (applyResult, bool) {
	var failures applyFailures
	defer s.applyRecovered(&failures)
	for {
		_, err := s.db.Apply([]db.Op{{Index: e.GetIndex(), Term: e.GetTerm()}})
		if err == nil {
			return applyResult{err: cause.Error()}, true
		}
		s.applyFailed(&failures, e.GetIndex(), err)
		if !s.sleepUnlessStopped(applyRetryEvery) {
			return applyResult{}, false
		}
	}
}

// sleepUnlessStopped waits d; it returns false if the store stops meanwhile.
func (s *Store) sleepUnlessStopped(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.stopc:
		return false
	case <-t.C:
		return true
	}
}

var errNothingToSnapshot error = errcode.ErrNothingNew

// compact records a snapshot at the applied index and drops log entries older than trailing entries
// before it. The database is made durable first: the log forgets only what the database file surely holds.
func (s *Store) compact(force bool, trailing uint64) error {
	idx, _, cs := s.applied.snapshot()
	snap, err := s.rlog.Snapshot()
	if err != nil {
		return err
	}
	last := snap.GetMetadata().GetIndex()
	if idx <= last || (!force && idx-last < s.cfg.SnapshotThreshold) {
		return errNothingToSnapshot
	}
	if _, err := s.db.Sync(); err != nil {
		return err
	}
	if err := s.rlog.CreateSnapshot(idx, cs); err != nil {
		return fmt.Errorf("record snapshot at %d: %w", idx, err)
	}
	first, _ := s.rlog.FirstIndex()
	if idx > trailing && idx-trailing > first {
		if err := s.rlog.Compact(idx - trailing); err != nil {
			return fmt.Errorf("compact log to %d: %w", idx-trailing, err)
		}
	}
	if err := s.db.Checkpoint(); err != nil {
		s.log.Warn("checkpoint after snapshot", "err", err)
	}
	s.removeStaleSnapshots(idx) // received ones raft never installed
	s.log.Info("snapshot taken", "index", idx)
	return nil
}

// appliedIndex is the apply loop's position, with a way to wait for it to pass a given index.
type appliedIndex struct {
	mu    sync.Mutex
	idx   uint64
	term  uint64
	cs    *raftpb.ConfState
	moved chan struct{} // closed and replaced whenever idx advances
}

func newAppliedIndex() *appliedIndex {
	return &appliedIndex{cs: &raftpb.ConfState{}, moved: make(chan struct{})}
}

func (a *appliedIndex) init(idx, term uint64, cs *raftpb.ConfState) { a.set(idx, term, cs) }

func (a *appliedIndex) set(idx, term uint64, cs *raftpb.ConfState) {
	a.mu.Lock()
	a.idx, a.term, a.cs = idx, term, cs
	close(a.moved)
	a.moved = make(chan struct{})
	a.mu.Unlock()
}

func (a *appliedIndex) index() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.idx
}

func (a *appliedIndex) confState() *raftpb.ConfState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cs
}

func (a *appliedIndex) snapshot() (idx, term uint64, cs *raftpb.ConfState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.idx, a.term, a.cs
}

// wait returns once the applied index is at least target.
func (a *appliedIndex) wait(ctx context.Context, target uint64) error {
	for {
		a.mu.Lock()
		if a.idx >= target {
			a.mu.Unlock()
			return nil
		}
		moved := a.moved
		a.mu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waiters maps the log index of each proposal this node made to the caller waiting for it.
type waiters struct {
	mu      sync.Mutex
	byIndex map[uint64]*proposal
}

func newWaiters() *waiters { return &waiters{byIndex: map[uint64]*proposal{}} }

func (w *waiters) register(index uint64, p *proposal) {
	w.mu.Lock()
	if old := w.byIndex[index]; old != nil {
		// This node's log was rewritten at the index, but another node may still hold the old entry
		// and commit it later.
		old.fail(ErrOutcomeUnknown)
	}
	w.byIndex[index] = p
	w.mu.Unlock()
}

func (w *waiters) take(index uint64) *proposal {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.byIndex[index]
	delete(w.byIndex, index)
	return p
}

// failUpTo fails every waiter at or below index: entries a snapshot replaced, whose fate this node
// cannot tell.
func (w *waiters) failUpTo(index uint64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, p := range w.byIndex {
		if i <= index {
			p.fail(err)
			delete(w.byIndex, i)
		}
	}
}

func (w *waiters) failAll(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, p := range w.byIndex {
		p.fail(err)
		delete(w.byIndex, i)
	}
}

// compactAll records a snapshot at the applied index (if there is none there yet) and compacts the log up
// to it, keeping nothing behind it.
func (s *Store) compactAll() error {
	idx, _, cs := s.applied.snapshot()
	snap, err := s.rlog.Snapshot()
	if err != nil {
		return err
	}
	if idx > snap.GetMetadata().GetIndex() {
		if _, err := s.db.Sync(); err != nil {
			return err
		}
		if err := s.rlog.CreateSnapshot(idx, cs); err != nil {
			return fmt.Errorf("record snapshot at %d: %w", idx, err)
		}
	}
	if first, _ := s.rlog.FirstIndex(); first <= idx {
		if err := s.rlog.Compact(idx); err != nil {
			return fmt.Errorf("compact log to %d: %w", idx, err)
		}
	}
	return nil
}
