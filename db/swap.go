package db

import (
	"context"
	"errors"
)

// ErrReplaced ends the reads under way when the database file is replaced (a snapshot from the leader, or
// a load): the replacement waits for every read to end, and a read that never ends would hold it up, and
// with it the node's log, for good.
var ErrReplaced = errors.New("query interrupted: the database is being replaced (a snapshot from the leader, or a load)")

// startRead takes the database for a read that ctx governs; the returned context also ends if the file is
// replaced meanwhile. done releases both.
func (d *DB) startRead(ctx context.Context) (context.Context, func()) {
	d.swap.RLock()
	d.abortMu.Lock()
	abort := d.abortReads
	d.abortMu.Unlock()
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(abort, func() { cancel(ErrReplaced) })
	return ctx, func() {
		stop()
		cancel(nil)
		d.swap.RUnlock()
	}
}

// lockForSwap takes the database exclusively, first interrupting the reads that hold it.
func (d *DB) lockForSwap() {
	d.abortMu.Lock()
	d.cancelReads()
	d.abortMu.Unlock()
	d.swap.Lock()
	d.abortMu.Lock()
	d.abortReads, d.cancelReads = context.WithCancel(context.Background())
	d.abortMu.Unlock()
}
