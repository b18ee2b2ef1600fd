package cdc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrGone reports a pull from an index whose groups were pruned already.
var ErrGone = errors.New("changes gone")

// Pull returns up to limit groups after index after from this node's queue, waiting up to wait for the
// first one if there is none yet. It reports ErrGone (wrapped, with the oldest index it can still serve
// from) when groups after after were pruned.
func (s *Service) Pull(ctx context.Context, after uint64, limit int, wait time.Duration) ([]Group, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		s.waitMu.Lock()
		arrived := s.newGrps
		s.waitMu.Unlock()
		st, err := s.queue.Stats()
		if err != nil {
			return nil, err
		}
		if after < st.Pruned {
			return nil, fmt.Errorf("%w: the changes after index %d were pruned (through %d); read from index %d on", ErrGone, after, st.Pruned, st.Pruned)
		}
		groups, err := s.queue.Read(after, limit)
		if err != nil || len(groups) > 0 {
			return groups, err
		}
		select {
		case <-arrived:
		case <-deadline.C:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.stopc:
			return nil, errors.New("stopping")
		}
	}
}

// PullResponse is the pull feed's answer: the same envelope a webhook gets, plus where to go on from.
func (s *Service) PullResponse(groups []Group, after uint64) []byte {
	next := after
	if len(groups) > 0 {
		next = groups[len(groups)-1].Index
	}
	body := s.envelope(groups)
	// The envelope ends with "]}": add the next index to read after.
	return append(body[:len(body)-1], fmt.Sprintf(`,"next":%d}`, next)...)
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}
