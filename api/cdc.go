package api

import (
	"errors"
	"expvar"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftlite/raftlite/store"
)

// The pull feed's bounds: how many groups one answer holds, and how long it waits for the first.
const (
	defaultPullLimit = 100
	maxPullLimit     = 1000
	maxPullWait      = 60 * time.Second
)

// handleChanges serves the pull feed (GET /db/changes?after=N&limit=M&wait=D): the groups of row changes
// this node's queue holds after index N, in the webhook's JSON, waiting up to D for one if there is none.
// "next" in the answer is the index to ask after next time.
func (s *Service) handleChanges(w http.ResponseWriter, r *http.Request, p *params) {
	v := r.URL.Query()
	after, limit, wait := uint64(0), defaultPullLimit, time.Duration(0)
	var err error
	if a := v.Get("after"); a != "" {
		if after, err = strconv.ParseUint(a, 10, 64); err != nil {
			http.Error(w, "after "+quoteShort(a)+" is not an index (a whole number, 0 or more)", http.StatusBadRequest)
			return
		}
	}
	if l := v.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > maxPullLimit {
			http.Error(w, "limit "+quoteShort(l)+" must be a whole number from 1 to "+strconv.Itoa(maxPullLimit), http.StatusBadRequest)
			return
		}
	}
	if d := v.Get("wait"); d != "" {
		if wait, err = time.ParseDuration(d); err != nil || wait < 0 || wait > maxPullWait {
			http.Error(w, "wait "+quoteShort(d)+" must be a duration from 0s to "+maxPullWait.String()+", such as 10s", http.StatusBadRequest)
			return
		}
	}
	body, err := s.store.PullChanges(r.Context(), after, limit, wait)
	switch {
	case errors.Is(err, store.ErrNoCDC):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case errors.Is(err, store.ErrChangesGone):
		http.Error(w, err.Error(), http.StatusGone)
		return
	case err != nil && r.Context().Err() != nil:
		return // the client went away
	case err != nil:
		failed(w, err, "pull changes", http.StatusInternalServerError)
		return
	}
	writeJSON(w, p, http.StatusOK, body)
}

// cdcStatus is /status's "cdc" section (present only where CDC is enabled) and "store.cdc".
func (s *Service) cdcStatus() (section map[string]any, storeCDC map[string]any) {
	c := s.store.CDC()
	storeCDC = map[string]any{"enabled": c.Enabled, "registered": c.Enabled}
	if !c.Enabled {
		return nil, storeCDC
	}
	section = map[string]any{
		"dir":            "",
		"queue":          "the database's _raftlite_cdc table",
		"fifo":           map[string]any{"has_next": c.Queue.Last > c.HighWatermark, "length": c.Queue.Length},
		"highwater_mark": c.HighWatermark,
		"is_leader":      s.store.IsLeader(),
		"node_id":        s.store.Status().NodeID,
		"sink":           c.Sink,
		"first_index":    c.Queue.First,
		"last_index":     c.Queue.Last,
		"pruned_index":   c.Queue.Pruned,
		"batches_sent":   c.Stats.BatchesOK.Load(),
		"send_failures":  c.Stats.AttemptsFailed.Load(),
		"last_error":     c.LastError,
	}
	if !c.LastErrorTime.IsZero() {
		section["last_error_time"] = c.LastErrorTime.UTC().Format(time.RFC3339Nano)
	}
	if c.ServiceID != "" {
		section["service_id"] = c.ServiceID
	}
	return section, storeCDC
}

// cdcVarsFor is the Service whose counters /debug/vars shows as "cdc.service" (a process runs one).
var (
	cdcVarsFor  atomic.Pointer[Service]
	publishOnce sync.Once
)

// publishCDCVars registers "cdc.service" in /debug/vars, present (all zeros) whether CDC is on or not.
func publishCDCVars(s *Service) {
	cdcVarsFor.Store(s)
	publishOnce.Do(func() {
		expvar.Publish("cdc.service", expvar.Func(func() any {
			out := map[string]int64{"batcher_events_write": 0, "batcher_reads": 0, "batcher_write_ignored": 0,
				"batcher_writes": 0, "dropped_failed_to_send": 0, "fifo_enqueue_ignored": 0, "fifo_size": 0,
				"hwm_ignored": 0, "num_bytes_tx": 0, "num_events_tx_failed": 0, "num_events_tx_ok": 0, "retries": 0,
				"snapshot_sync": 0}
			svc := cdcVarsFor.Load()
			if svc == nil {
				return out
			}
			c := svc.store.CDC()
			st := c.Stats
			out["batcher_reads"] = st.Reads.Load()
			out["batcher_writes"] = st.GroupsRead.Load()
			out["dropped_failed_to_send"] = st.Dropped.Load()
			out["fifo_size"] = c.Queue.Length
			out["hwm_ignored"] = st.HWMIgnored.Load()
			out["num_bytes_tx"] = st.BytesSent.Load()
			out["num_events_tx_failed"] = st.AttemptsFailed.Load()
			out["num_events_tx_ok"] = st.BatchesOK.Load()
			out["retries"] = st.Retries.Load()
			return out
		}))
	})
}
