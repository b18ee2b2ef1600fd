package cluster

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/auth"
	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/nodecall"
	"github.com/raftlite/raftlite/transport"
)

// HandleRPC serves the internal calls that belong to the cluster; handled is false for any other method.
// Every call that changes something is checked against this node's -auth file.
func (cl *Cluster) HandleRPC(ctx context.Context, method uint8, req []byte) (resp []byte, handled bool, err error) {
	switch method {
	case nodecall.NodeMeta:
		resp, err = proto.Marshal(cl.Meta())
	case nodecall.Join:
		resp, err = cl.serveJoin(ctx, req)
	case nodecall.Notify:
		var nr command.NotifyRequest
		if err = proto.Unmarshal(req, &nr); err != nil {
			return nil, true, fmt.Errorf("decode notify request: %w", err)
		}
		if err = nodecall.Authorize(cl.cfg.Auth, nr.GetCredentials(), "join", auth.Join); err == nil {
			cl.join.notify(nr.GetMember())
		}
	case nodecall.Remove:
		var rr command.RemoveRequest
		if err = proto.Unmarshal(req, &rr); err != nil {
			return nil, true, fmt.Errorf("decode remove request: %w", err)
		}
		if err = nodecall.Authorize(cl.cfg.Auth, rr.GetCredentials(), "remove nodes", auth.Remove); err == nil {
			err = cl.Remove(ctx, rr.GetNodeId())
		}
	case nodecall.Stepdown:
		var sr command.StepdownRequest
		if err = proto.Unmarshal(req, &sr); err != nil {
			return nil, true, fmt.Errorf("decode stepdown request: %w", err)
		}
		if err = nodecall.Authorize(cl.cfg.Auth, sr.GetCredentials(), "change the leader", auth.LeaderOps); err == nil {
			err = cl.stepdownLocal(ctx, sr.GetNodeId(), sr.GetWait())
		}
	case nodecall.RecoverState:
		resp, err = cl.recovery.serveRecoveryState(req)
	default:
		return nil, false, nil
	}
	return resp, true, err
}

func (cl *Cluster) serveJoin(ctx context.Context, req []byte) ([]byte, error) {
	cl.counts.joinRequests.Add(1)
	var jr command.JoinRequest
	if err := proto.Unmarshal(req, &jr); err != nil {
		return nil, fmt.Errorf("decode join request: %w", err)
	}
	if err := nodecall.Authorize(cl.cfg.Auth, jr.GetCredentials(), "join", cl.joinPerms(jr.GetMember())...); err != nil {
		return nil, err
	}
	if err := cl.checkCluster(jr.GetClusterId(), jr.GetMember().GetNodeId()); err != nil {
		return nil, err
	}
	if err := cl.Join(nodecall.WithCallerCredentials(ctx, jr.GetCredentials()), jr.GetMember()); err != nil {
		return nil, err
	}
	return proto.Marshal(&command.JoinResponse{ClusterId: cl.clusterID.Load()})
}

// joinPerms: a voter needs "join"; a read replica "join-read-only", "join-read-replica" or "join". Changing
// a voter's entry (its address, or making it a learner) needs "join": a read-replica permission must not
// let a caller demote or redirect a voting member.
func (cl *Cluster) joinPerms(m *command.Member) []auth.Perm {
	if m.GetVoter() || cl.members.isVoterEntry(m) {
		return []auth.Perm{auth.Join}
	}
	return []auth.Perm{auth.Join, auth.JoinReadOnly, auth.JoinReadReplica}
}

// Meta is this node's metadata, as other nodes ask for it.
func (cl *Cluster) Meta() *command.NodeMetaResponse {
	return &command.NodeMetaResponse{
		HttpAddr:     cl.cfg.HTTPURL,
		CommitIndex:  cl.node.Commit(),
		AppliedIndex: cl.node.Applied().Index(),
		Version:      cl.cfg.Version,
		LeaderRaftId: cl.node.Leader(),
		ClusterId:    cl.clusterID.Load(),
	}
}

// LeaderAddr is the Raft address of the leader, if this node knows one.
func (cl *Cluster) LeaderAddr() (string, error) {
	id := cl.node.Leader()
	if id == 0 {
		return "", errcode.ErrNoLeader
	}
	if id == cl.raftID {
		return cl.cfg.RaftAddr, nil
	}
	m, ok := cl.members.Get(id)
	if !ok {
		return "", errcode.ErrNoLeader
	}
	return m.GetRaftAddr(), nil
}

// AcceptStream takes raft traffic addressed to this data directory's Raft ID only. Traffic addressed to
// another Raft ID under this node-id means the cluster still knows the identity this node had before its
// data was wiped: that is the signal for a fresh first node to rejoin rather than bootstrap.
func (cl *Cluster) AcceptStream(hello transport.Hello) error {
	if err := cl.checkCluster(hello.FromClusterID, hello.FromNodeID); err != nil {
		if hello.ToNodeID == cl.cfg.NodeID {
			cl.warnForeignCluster(hello.FromClusterID, hello.FromAddr)
		}
		return err
	}
	if hello.ToID == cl.raftID {
		// A node that has just joined learns its peers from the log it has not received yet; until then it
		// answers whoever calls, at the address the caller gives. A member restarted at another address is
		// reachable there at once, before the membership says so (refresh.go).
		if m, known := cl.members.Get(hello.FromID); hello.FromID != 0 && hello.FromAddr != "" && (!known || m.GetRaftAddr() != hello.FromAddr) {
			cl.tr.SetPeer(hello.FromID, hello.FromNodeID, hello.FromAddr)
		}
		return nil
	}
	if hello.ToNodeID == cl.cfg.NodeID && hello.FromAddr != "" {
		select {
		case cl.join.contact <- hello.FromAddr:
		default:
		}
		return fmt.Errorf("node %s restarted without its data and is now Raft node %x; it rejoins through %s",
			cl.cfg.NodeID, cl.raftID, hello.FromAddr)
	}
	return fmt.Errorf("this is Raft node %x (node %s), not %x (node %s)", cl.raftID, cl.cfg.NodeID, hello.ToID, hello.ToNodeID)
}
