package cluster

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/raftlite/raftlite/command"
)

// A cluster ID names one cluster for its whole life. It is fixed when the cluster bootstraps, learned by
// every node that joins, and kept in the data directory beside the Raft ID. Every hello carries it, and a
// node refuses raft traffic and join requests from another cluster. Without it, two clusters that share a
// node-id or an address could merge: a first node that lost its data while cut off from its peers
// bootstraps a new cluster, and an old member that then asks it to refresh its membership would be
// added to the new cluster, whose log would overwrite the old member'cl.
const clusterIDFile = "cluster-id"

// LoadClusterID reads the data directory's cluster ID; 0 means the node belongs to no cluster yet.
func LoadClusterID(dir string) (uint64, error) {
	path := filepath.Join(dir, clusterIDFile)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read cluster ID: %w", err)
	}
	id, err := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("read cluster ID from %s: invalid content %q", path, strings.TrimSpace(string(b)))
	}
	return id, nil
}

// clusterIDFor derives the ID of a cluster bootstrapped with members. It depends only on their Raft IDs,
// so every node of a -bootstrap-expect group, bootstrapping with the same members, derives the same one.
func clusterIDFor(members []*command.Member) uint64 {
	ids := make([]uint64, len(members))
	for i, m := range members {
		ids[i] = m.GetRaftId()
	}
	slices.Sort(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write(binary.BigEndian.AppendUint64(nil, id))
	}
	if id := binary.BigEndian.Uint64(h.Sum(nil)) >> 1; id != 0 {
		return id
	}
	return 1
}

// setClusterID makes id this node's cluster ID, durably, before the node acts as a member of it.
func (cl *Cluster) setClusterID(id uint64) error {
	if cl.clusterID.Load() == id {
		return nil
	}
	if err := writeIDFile(cl.cfg.DataDir, clusterIDFile, id); err != nil {
		return fmt.Errorf("write cluster ID: %w", err)
	}
	cl.clusterID.Store(id)
	cl.tr.SetClusterID(id)
	return nil
}

// checkCluster refuses a caller from another cluster. Zero on either side means "none yet" and passes.
func (cl *Cluster) checkCluster(callerCluster uint64, nodeID string) error {
	if ours := cl.clusterID.Load(); callerCluster != 0 && ours != 0 && callerCluster != ours {
		return fmt.Errorf("node %s belongs to cluster %x, and this node to cluster %x: nodes of different clusters never merge (to move node %s here, delete its data directory and start it with -join)",
			nodeID, callerCluster, ours, nodeID)
	}
	return nil
}

// warnForeignCluster is logged when another cluster still counts this node's node-id as a member: this
// node lost its data and bootstrapped a new cluster instead of rejoining its old one. Nothing automatic
// can reconcile the two, since both may hold writes; the operator decides. Logged at most once a minute.
func (cl *Cluster) warnForeignCluster(theirs uint64, addr string) {
	now := time.Now().UnixNano()
	last := cl.foreignWarned.Load()
	if now-last < int64(time.Minute) || !cl.foreignWarned.CompareAndSwap(last, now) {
		return
	}
	cl.log.Error("another cluster still counts this node-id as a member: this node lost its data and formed a new cluster; the data of the other cluster is not here",
		"node_id", cl.cfg.NodeID, "this_cluster", fmt.Sprintf("%x", cl.clusterID.Load()),
		"other_cluster", fmt.Sprintf("%x", theirs), "other_cluster_node", addr,
		"to_return_this_node", "stop it, delete its data directory, and start it with -join "+addr)
}
