package cluster

import (
	"time"
)

// A node can be removed while it is down (by an operator's /remove, or by the leader's reaping). When it
// comes back with its data it still believes it is a member: nobody sends it anything, and its
// campaigns go unanswered (pre-vote keeps them from disturbing the others). So a node that has known no
// leader for a while, and has -join targets or discovery, asks the cluster to take it (back): for a
// member that changes nothing (Join is a no-op for an entry that matches), and a removed node is added
// again as a learner and catches up.

// forgottenAfter is how many election timeouts without a leader make a node ask.
const forgottenAfter = 4

// watchForgotten runs until the cluster stops.
func (j *joiner) watchForgotten() {
	if len(j.cl.cfg.Join) == 0 && j.cl.cfg.Discovery == nil {
		return
	}
	ctx, cancel := j.cl.stopContext()
	defer cancel()
	timeout := time.Duration(forgottenAfter) * j.cl.cfg.ElectionTimeout
	leaderSeen := time.Now()
	for j.cl.sleep(j.cl.cfg.ElectionTimeout) {
		if j.cl.node.Leader() != 0 {
			leaderSeen = time.Now()
			continue
		}
		if time.Since(leaderSeen) < timeout {
			continue
		}
		if err := j.joinAny(ctx); err == nil {
			j.cl.log.Warn("this node knew no leader for a while: it asked the cluster to take it back (as it does if it was removed while away), and the leader did")
			leaderSeen = time.Now()
		}
	}
}
