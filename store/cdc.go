package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/raftlite/raftlite/cdc"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/nodecall"
)

// CaptureSupported reports whether this build can capture changes (the sqlite_preupdate_hook tag).
const CaptureSupported = db.CaptureSupported

// ErrChangesGone reports a pull of changes that were pruned already; ErrNoCDC a pull from a node that
// does not capture changes.
var (
	ErrChangesGone = cdc.ErrGone
	ErrNoCDC       = errors.New("change data capture is not enabled on this node (start it with -cdc-config)")
)

// capture is the database's capture configuration for cfg (nil without CDC). Notify reaches the service
// once it exists.
func (s *Store) capture(cfg *cdc.Config) *db.Capture {
	if cfg == nil {
		return nil
	}
	c := &db.Capture{RowIDsOnly: cfg.RowIDsOnly, Notify: func(groups int) {
		if s.cdc != nil {
			s.cdc.Queued(groups)
		}
	}}
	if cfg.TableFilter != nil {
		c.Filter = cfg.TableFilter.MatchString
	}
	return c
}

// cdcQueue is the database's change queue as the CDC service reads it.
type cdcQueue struct{ d *db.DB }

func (q cdcQueue) Read(after uint64, limit int) ([]cdc.Group, error) {
	gs, err := q.d.Changes(after, limit)
	out := make([]cdc.Group, len(gs))
	for i, g := range gs {
		out[i] = cdc.Group{Index: g.Index, TimestampMs: g.TimestampMs, JSON: g.JSON}
	}
	return out, err
}

func (q cdcQueue) Prune(through uint64, keepSinceMs int64) (int64, error) {
	return q.d.PruneChanges(through, keepSinceMs)
}

func (q cdcQueue) Stats() (cdc.QueueStats, error) {
	st, err := q.d.ChangeStats()
	return cdc.QueueStats{Length: st.Length, First: st.First, Last: st.Last, Pruned: st.Pruned, Delivered: st.Delivered}, err
}

// cdcCluster is the node as the CDC service sees it.
type cdcCluster Store

func (c *cdcCluster) IsLeader() bool { return (*Store)(c).IsLeader() }

// BroadcastHighWatermark tells every other voter how far delivery got, so that they prune their queues.
// It is not replicated through the log: a voter that misses it hears it again next interval.
func (c *cdcCluster) BroadcastHighWatermark(ctx context.Context, hwm uint64) {
	s := (*Store)(c)
	req := binary.BigEndian.AppendUint64(nil, hwm)
	var wg sync.WaitGroup
	for _, m := range s.cluster.Members().List() {
		if !m.Voter || m.RaftID == s.cluster.RaftID() {
			continue
		}
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			if _, err := s.tr.Call(ctx, addr, nodecall.CDCHighWatermark, req); err != nil {
				s.log.Debug("CDC high watermark not delivered", "to", addr, "err", err)
			}
		}(m.RaftAddr)
	}
	wg.Wait()
}

// serveHighWatermark adopts the leader's high watermark.
func (h *handler) serveHighWatermark(req []byte) error {
	s := (*Store)(h)
	if len(req) != 8 {
		return fmt.Errorf("CDC high watermark: %d bytes, want 8", len(req))
	}
	if s.cdc != nil {
		s.cdc.SetHighWatermark(binary.BigEndian.Uint64(req))
	}
	return nil
}

// PullChanges serves the pull feed from this node's queue: up to limit groups after index after, waiting
// up to wait for one. The answer is the webhook's JSON envelope with "next", the index to pull after next.
func (s *Store) PullChanges(ctx context.Context, after uint64, limit int, wait time.Duration) ([]byte, error) {
	if s.cdc == nil {
		return nil, ErrNoCDC
	}
	groups, err := s.cdc.Pull(ctx, after, limit, wait)
	if err != nil {
		return nil, err
	}
	return s.cdc.PullResponse(groups, after), nil
}

// CDCStatus is what /status and /debug/vars report about change data capture.
type CDCStatus struct {
	Enabled       bool
	Sink          string // the endpoint, a password in it masked
	ServiceID     string
	HighWatermark uint64
	Queue         cdc.QueueStats
	LastError     string
	LastErrorTime time.Time
	Stats         *cdc.Stats
}

// CDC reports the state of change data capture on this node.
func (s *Store) CDC() CDCStatus {
	if s.cdc == nil {
		return CDCStatus{Stats: &cdc.Stats{}}
	}
	st := CDCStatus{Enabled: true, Sink: s.cdc.Config().Redacted(), ServiceID: s.cdc.Config().ServiceID,
		HighWatermark: s.cdc.HighWatermark(), Stats: s.cdc.Counters()}
	st.Queue, _ = cdcQueue{s.db}.Stats()
	st.LastError, st.LastErrorTime = s.cdc.LastError()
	return st
}
