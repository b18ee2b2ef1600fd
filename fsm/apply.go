package fsm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/raftnode"
)

// snapshotRequest asks the apply loop to compact the log now (the /snapshot endpoint).
type snapshotRequest struct {
	trailing uint64
	done     chan error
}

func (s *FSM) runApply() {
	defer s.loops.Done()
	ticker := time.NewTicker(s.cfg.SnapshotInterval)
	defer ticker.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case t := <-s.node.Committed():
			tasks := []raftnode.Apply{t}
			for len(tasks) < 64 {
				select {
				case t := <-s.node.Committed():
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
func (s *FSM) applyTasks(tasks []raftnode.Apply) bool {
	processed, _, cs := s.applied.Position()
	dbApplied := s.db.State().AppliedIndex
	b := &batch{cs: cs}
	for _, t := range tasks {
		if t.Install != nil {
			if !s.flush(b) {
				return false
			}
			t.Install.Done <- s.install(t.Install.Snap, t.Install.Path)
			processed = s.applied.Index()
			dbApplied = s.db.State().AppliedIndex
			b.cs = s.applied.ConfState()
			continue
		}
		confs := t.Confs
		for _, e := range t.Entries {
			i := e.GetIndex()
			isConf := e.GetType() == raftpb.EntryConfChange || e.GetType() == raftpb.EntryConfChangeV2
			var conf raftnode.AppliedConf
			if isConf && len(confs) > 0 {
				conf, confs = confs[0], confs[1:]
			}
			if i <= processed {
				continue
			}
			processed = i
			if isConf {
				b.cs = conf.CS
			}
			if i <= dbApplied {
				// Handed out again after a restart; the database already holds it.
				b.last = e
				continue
			}
			op := db.Op{Index: i, Term: e.GetTerm()}
			if isConf {
				op.Membership = conf.Membership
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
					s.applied.Set(i, e.GetTerm(), b.cs)
					s.deliver(e, res)
					dbApplied = i
					continue
				} else if cmd.GetType() == command.Command_TYPE_REQUEST && !isStrongRead(&cmd) {
					op.Request = cmd.GetRequest()
					op.Env = db.Env{NowUnixMs: cmd.GetNowUnixMs(), Seed: cmd.GetSeed(), StepLimit: cmd.GetStepLimit(),
						ExtensionsDigest: cmd.GetExtensionsDigest()}
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
	if s.bootPending && s.applied.Index() >= s.db.State().AppliedIndex {
		// Restarted after a boot whose compaction did not happen: do it now, before anyone joins.
		if err := s.finishBoot(); err != nil {
			s.log.Error("finishing an interrupted boot", "err", err)
		} else {
			s.bootPending = false
		}
	}
	return true
}

// isStrongRead reports a strong read's entry, as earlier versions wrote them (strong reads now use a
// ReadIndex round and write nothing): it only marked the read's place in the log, so every replica records
// it as applied without running anything; logs written by those versions may still hold some.
func isStrongRead(cmd *command.Command) bool {
	return cmd.GetRequest().GetMode() == command.Mode_MODE_QUERY
}

// flush applies the batch's ops in one transaction, publishes the new applied index, and wakes their
// callers. A failure of the environment (disk full) is retried until it clears: an entry is never skipped
// (fault.go).
func (s *FSM) flush(b *batch) bool {
	if b.last == nil {
		return true
	}
	ops, entries := b.ops, b.entries
	var failures applyFailures
	for len(ops) > 0 {
		results, err := s.db.Apply(ops)
		if err == nil {
			// The whole rest is committed: publish the applied position before waking the callers, so
			// that a node which answered a write also reports (and reads at) the position that covers it.
			s.applyRecovered(&failures)
			s.applied.Set(b.last.GetIndex(), b.last.GetTerm(), b.cs)
		}
		// Whatever was committed is delivered, even if a later part of the batch failed.
		for k, r := range results {
			s.deliver(entries[k], Result{Results: r.Results, Err: r.Error})
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
	if len(b.ops) == 0 { // entries with nothing to run (conf changes, markers): the loop did not publish
		s.applied.Set(b.last.GetIndex(), b.last.GetTerm(), b.cs)
	}
	if b.last.GetIndex() >= s.node.Commit() {
		s.caughtUp.Store(time.Now().UnixNano())
	}
	b.ops, b.entries, b.last = b.ops[:0], b.entries[:0], nil
	return true
}

// deliver wakes the caller waiting for e, if this node proposed it.
func (s *FSM) deliver(e *raftpb.Entry, res Result) { s.node.Deliver(e, res) }

// applyLoad replaces the database with the SQLite file a LOAD entry carries. A file that every replica
// refuses alike (not a database) leaves the database as it was and is the entry's result; a failing disk
// is retried.
func (s *FSM) applyLoad(e *raftpb.Entry, cmd *command.Command) (Result, bool) {
	path := filepath.Join(s.cfg.SnapDir, fmt.Sprintf("load-%d.db", e.GetIndex()))
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
			return Result{}, true
		}
		if errors.Is(err, db.ErrNotADatabase) {
			return s.refuseLoad(e, err)
		}
		if errors.Is(err, db.ErrUnusable) {
			s.cfg.Fail(err)
			return Result{}, false
		}
		s.applyFailed(&failures, e.GetIndex(), fmt.Errorf("load the database the log carries: %w", err))
		if !s.sleepUnlessStopped(applyRetryEvery) {
			return Result{}, false
		}
	}
}

func (s *FSM) refuseLoad(e *raftpb.Entry, cause error) (Result, bool) {
	var failures applyFailures
	defer s.applyRecovered(&failures)
	for {
		_, err := s.db.Apply([]db.Op{{Index: e.GetIndex(), Term: e.GetTerm()}})
		if err == nil {
			return Result{Err: cause.Error()}, true
		}
		s.applyFailed(&failures, e.GetIndex(), err)
		if !s.sleepUnlessStopped(applyRetryEvery) {
			return Result{}, false
		}
	}
}

// sleepUnlessStopped waits d; it returns false if the store stops meanwhile.
func (s *FSM) sleepUnlessStopped(d time.Duration) bool {
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
func (s *FSM) compact(force bool, trailing uint64) error {
	idx, _, cs := s.applied.Position()
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
	s.node.RemoveStaleSnapshots(idx) // received ones raft never installed
	s.snapshots.Add(1)
	s.log.Info("snapshot taken", "index", idx)
	return nil
}

// compactAll records a snapshot at the applied index (if there is none there yet) and compacts the log up
// to it, keeping nothing behind it.
func (s *FSM) compactAll() error {
	idx, _, cs := s.applied.Position()
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
