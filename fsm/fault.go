package fsm

import (
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"

	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/raftnode"
)

// A node whose disk refuses writes cannot do its part. When its Raft log cannot be written (save in
// raft.go), its raft loop waits for room and takes no part in the cluster meanwhile. When its database
// cannot be written, raft goes on (the log is fine) but committed entries cannot be applied: such a node
// must not lead, since every write through it would wait for an apply that does not come, and must not
// serve reads, whose data no longer moves. So the apply loop reports the fault as soon as it is clearly
// one (at once for a full disk, a read-only file system or an I/O error; after applyFaultAfter of failed
// attempts for anything else), the raft loop hands leadership to another voter, requests get the fault as
// their error, /readyz answers 503 with it, and the apply loop goes on retrying every applyRetryEvery until
// the entries apply. Nothing is skipped or lost: the entries wait in the log.

const (
	applyFaultAfter = 2 * time.Second
	applyRetryEvery = time.Second
	// faultRemindEvery is how often the log says again that the fault lasts.
	faultRemindEvery = time.Minute
)

// FaultError says why this node serves nothing now: its disk refused a write.
type FaultError struct {
	Kind  string // "disk full", "read-only file system", "I/O error", "extensions differ", or "cannot write the database"
	What  string // what the node cannot do
	Cause error
}

func (e *FaultError) Error() string {
	until := "it can write again"
	if e.Kind == "extensions differ" {
		until = "it is restarted with the same -extensions-path as the other nodes"
	}
	return fmt.Sprintf("%s: this node cannot %s (%v); it serves no reads or writes until %s", e.Kind, e.What, e.Cause, until)
}

func (e *FaultError) Unwrap() error { return e.Cause }

// As lets a FaultError be seen as an errcode.Error with the Fault code, which travels between nodes.
func (e *FaultError) As(target any) bool {
	if t, ok := target.(**errcode.Error); ok {
		*t = errcode.New(errcode.Fault, e.Error())
		return true
	}
	return false
}

// applyFault is a failure to apply committed entries that lasts.
type applyFault struct {
	err   *FaultError
	since time.Time
}

// Fault reports why this node cannot serve now (its disk refuses writes), or nil.
func (s *FSM) Fault() error {
	if s.node.LogFull() {
		return raftnode.ErrDiskFull
	}
	if f := s.fault.Load(); f != nil {
		return f.err
	}
	return nil
}

// applyFailures tracks, in the apply loop, one run of failed attempts to apply.
type applyFailures struct {
	since    time.Time // first failure of the run
	reported time.Time // when the log last said so
}

// failed records a failed attempt to apply entries from first on. Once the failure counts as a fault it
// is published (and said in the log once, then once a minute), and the callers waiting for entries are
// answered: their entries are committed but cannot be applied here for now.
func (s *FSM) applyFailed(f *applyFailures, first uint64, err error) {
	now := time.Now()
	if f.since.IsZero() {
		f.since = now
	}
	kind := db.DiskFault(err)
	var mismatch *db.ExtensionMismatchError
	if errors.As(err, &mismatch) {
		kind = "extensions differ"
	}
	if kind == "" && now.Sub(f.since) < applyFaultAfter {
		s.log.Warn("cannot apply committed entries; retrying", "first", first, "err", err)
		return
	}
	if kind == "" {
		kind = "cannot write the database"
	}
	if s.fault.Load() == nil {
		// Published once per fault: the raft loop tells one fault from the next by this pointer.
		s.fault.Store(&applyFault{err: &FaultError{Kind: kind, What: "apply the log to its database", Cause: err}, since: f.since})
	}
	s.node.FailWaiting(0, errcode.New(errcode.OutcomeUnknown, kind+": this node could not finish the request; it may or may not be applied"))
	switch {
	case f.reported.IsZero():
		f.reported = now
		s.log.Error(kind+": cannot apply committed entries to the database; this node hands leadership to another voter and serves no reads or writes until it can write again; nothing is lost, the entries wait in the Raft log",
			"first_entry", first, "err", err, "retry_every", applyRetryEvery)
	case now.Sub(f.reported) >= faultRemindEvery:
		f.reported = now
		s.log.Error(kind+": still cannot apply committed entries to the database", "first_entry", first, "for", now.Sub(f.since).Round(time.Second), "err", err)
	}
}

// applied ends a run of failures: the entries that waited are applied.
func (s *FSM) applyRecovered(f *applyFailures) {
	if f.since.IsZero() {
		return
	}
	if s.fault.Swap(nil) != nil {
		s.log.Info("database writable again: the entries that waited are applied; this node serves again",
			"after", time.Since(f.since).Round(time.Millisecond))
	}
	*f = applyFailures{}
}

// HandOverIfFaulty (the raft node's hook, every tick) makes a leader that cannot apply hand leadership to the most
// up-to-date voter that is reachable. raft abandons a transfer after an election timeout; the next tick
// then tries again, perhaps with another voter.
func (s *FSM) HandOverIfFaulty(t *raftnode.Turn) {
	f := s.fault.Load()
	if f == nil || !s.node.IsLeader() {
		s.handedOver = nil
		return
	}
	if t.RawNode.BasicStatus().LeadTransferee != raft.None {
		return
	}
	var target, best uint64
	t.RawNode.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		if id == s.node.ID() || typ == raft.ProgressTypeLearner || !pr.RecentActive {
			return
		}
		if target == 0 || pr.Match > best {
			target, best = id, pr.Match
		}
	})
	first := s.handedOver != f
	s.handedOver = f
	if target == 0 {
		if first {
			s.log.Error("this node cannot apply the log but no other voter is reachable to take over leadership: the cluster takes no writes until this node can write again or another voter returns",
				"fault", f.err.Kind)
		}
		return
	}
	if first {
		name := s.cfg.Name(target)
		s.log.Warn("handing leadership over: this node cannot apply the log", "to", name, "fault", f.err.Kind)
	}
	t.RawNode.TransferLeader(target)
}
