package fsm

import (
	"time"
)

// watchApplies reports a statement of a committed entry that runs for long while it still runs: every
// write waits behind it, and without this line an operator sees writes stall with nothing in the log. It
// reports at SlowApply, then each time the wait doubles. (The database logs each slow statement again,
// with its whole duration, when it ends.)
func (s *FSM) watchApplies() {
	defer s.loops.Done()
	threshold := s.cfg.SlowApply
	every := min(time.Second, threshold/4)
	t := time.NewTicker(every)
	defer t.Stop()
	var seen time.Time // the start of the statement last reported
	var next time.Duration
	for {
		select {
		case <-s.stopc:
			return
		case <-t.C:
		}
		a, ok := s.db.Applying()
		if !ok {
			continue
		}
		if !a.Since.Equal(seen) {
			seen, next = a.Since, threshold
		}
		if running := time.Since(a.Since); running >= next {
			s.log.Warn("still applying one statement of a committed entry; every write waits behind it (-apply-step-limit bounds such statements)",
				"index", a.Index, "running_for", running.Round(time.Second), "statement", a.SQL)
			next *= 2
		}
	}
}
