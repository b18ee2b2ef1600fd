package raftnode

import (
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/raftlite/raftlite/raftlog"
)

// save persists entries and hard state. A full disk is waited out: the log is left as it was, and raft
// must not go on as if the entries were durable, so the node neither acknowledges nor votes (nor, as a
// leader, sends heartbeats, so the others elect a leader that can write) until there is room again. Any
// other failure stops the node: the log refuses further writes after one (a failed fsync may have lost
// data), and only a restart, which reads the disk again, can continue safely.
//
// While it waits, no caller is left hanging: requests under way are answered at once (their fate is
// unknown), and requests that arrive are refused with ErrDiskFull, so clients can go to another node.
func (l *loop) save(rd raft.Ready) bool {
	for {
		start := time.Now()
		err := l.n.cfg.Log.Save(rd.HardState, rd.Entries, rd.MustSync)
		if err == nil && rd.MustSync && l.n.cfg.ObserveFsync != nil {
			l.n.cfg.ObserveFsync(time.Since(start))
		}
		if err == nil {
			if l.n.logFull.Swap(false) {
				l.n.log.Info("Raft log writable again")
			}
			return true
		}
		if !errors.Is(err, raftlog.ErrNoSpace) {
			l.n.cfg.Fail(fmt.Errorf("write the Raft log: %w", err))
			return false
		}
		if !l.n.logFull.Swap(true) {
			l.n.log.Error("disk full: cannot write the Raft log; this node takes no part in the cluster until space is freed", "err", err)
			// Its loop is stuck here, so whatever it believed about leadership goes stale: it claims none
			// (no weak reads served from data that no longer moves), until raft runs again.
			l.n.state.leader.Store(raft.None)
			l.n.state.raftState.Store(int32(raft.StateFollower))
			for _, p := range l.unindexed {
				p.fail(errDiskFullInFlight)
			}
			l.n.waiters.failAll(errDiskFullInFlight)
			l.reads.failAll(ErrDiskFull)
		}
		if !l.refuseWhileFull(500 * time.Millisecond) {
			return false
		}
	}
}

// refuseWhileFull answers, for the time given, every proposal and read that arrives with ErrDiskFull:
// the raft loop cannot take them while its log cannot be written. It returns false if the node stops.
func (l *loop) refuseWhileFull(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-l.n.stopc:
			return false
		case <-timer.C:
			return true
		case p := <-l.n.in.propc:
			p.fail(ErrDiskFull)
		case r := <-l.n.in.readc:
			r.done <- readResult{err: ErrDiskFull}
		}
	}
}
