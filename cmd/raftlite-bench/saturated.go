package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// The saturated run (-only Saturated): a 3-node cluster under more write load than the machine can take,
// for -saturate (a minute by default): 32 clients inserting one row per request, and 2 clients inserting
// 4 MiB values, whose entries fill the leader's streams to the followers for tens of milliseconds each. It
// counts the elections the load causes (there should be none: heartbeats and votes have a lane of their
// own), and the Raft log's fsyncs per committed entry.

const saturatedValue = 16 << 20

func measureSaturated(o options, dir string, limits map[string]string) error {
	c, err := startClusterWith(o.binary, filepath.Join(dir, "saturated"), 3, strings.Fields(o.nodeFlags)...)
	if err != nil {
		return err
	}
	defer c.stop()
	leader, err := c.benchLeader()
	if err != nil {
		return err
	}
	big := strings.Repeat("x", saturatedValue)
	watch, err := watchRaft(c.leaderFirst(leader))
	if err != nil {
		return err
	}
	// Failed requests (a lost leader, a timeout) are counted, not fatal: they are what this run looks for.
	var bigWrites, failed atomic.Int64
	m, err := runClients(34, o.saturate, func(client int) (int, error) {
		var err error
		if client < 2 {
			bigWrites.Add(1)
			err = leader.exec([]any{"INSERT INTO bench(id, v) VALUES(?, ?)", ids.Add(1), big})
		} else {
			_, err = insertOne(leader)
		}
		if err != nil {
			failed.Add(1)
			time.Sleep(10 * time.Millisecond)
			return 0, nil
		}
		return 1, nil
	})
	if err != nil {
		return err
	}
	d, err := watch.delta()
	if err != nil {
		return err
	}
	key := fmt.Sprintf("saturated %s on 3 nodes (32 clients inserting rows, 2 inserting %d MiB values)", o.saturate, saturatedValue>>20)
	limits[key+": requests/s"] = fmt.Sprintf("%.0f (%d large; %d failed)", float64(m.stmts)/m.elapsed.Seconds(), bigWrites.Load(), failed.Load())
	limits[key+": elections"] = fmt.Sprintf("%.0f (leader changes seen by the nodes: %.0f)", d.elections, d.leaderChanges)
	limits[key+": fsyncs per committed entry, leader (followers)"] = d.fsyncText()
	return nil
}
