package store

import (
	"context"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/auth"
	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
)

// Internal calls between nodes (transport RPC methods).
const (
	rpcNodeMeta uint8 = 1
	rpcJoin     uint8 = 2
	rpcNotify   uint8 = 3
	rpcRemove   uint8 = 4
	rpcForward  uint8 = 5
	rpcStepdown uint8 = 6
	rpcLoad     uint8 = 7
	rpcBackup   uint8 = 8 // stream
	// rpcRecoverState: a survivor's log position during a peers.json recovery (JSON, peersjson.go).
	rpcRecoverState uint8 = 9
)

func (s *Store) handleRPC(ctx context.Context, method uint8, req []byte) ([]byte, error) {
	switch method {
	case rpcNodeMeta:
		return proto.Marshal(s.nodeMeta())
	case rpcJoin:
		var jr command.JoinRequest
		if err := proto.Unmarshal(req, &jr); err != nil {
			return nil, fmt.Errorf("decode join request: %w", err)
		}
		if err := s.authorize(jr.GetCredentials(), "join", s.joinPerms(jr.GetMember())...); err != nil {
			return nil, err
		}
		if err := s.checkCluster(jr.GetClusterId(), jr.GetMember().GetNodeId()); err != nil {
			return nil, err
		}
		if err := s.Join(withCredentials(ctx, jr.GetCredentials()), jr.GetMember()); err != nil {
			return nil, err
		}
		return proto.Marshal(&command.JoinResponse{ClusterId: s.clusterID.Load()})
	case rpcNotify:
		var nr command.NotifyRequest
		if err := proto.Unmarshal(req, &nr); err != nil {
			return nil, fmt.Errorf("decode notify request: %w", err)
		}
		if err := s.authorize(nr.GetCredentials(), "join", auth.Join); err != nil {
			return nil, err
		}
		s.notify(nr.GetMember())
		return nil, nil
	case rpcRemove:
		var rr command.RemoveRequest
		if err := proto.Unmarshal(req, &rr); err != nil {
			return nil, fmt.Errorf("decode remove request: %w", err)
		}
		if err := s.authorize(rr.GetCredentials(), "remove nodes", auth.Remove); err != nil {
			return nil, err
		}
		return nil, s.Remove(ctx, rr.GetNodeId())
	case rpcForward:
		var fr command.ForwardRequest
		if err := proto.Unmarshal(req, &fr); err != nil {
			return nil, fmt.Errorf("decode forwarded request: %w", err)
		}
		if err := s.authorizeForward(&fr); err != nil {
			return nil, err
		}
		resp, err := s.serveForwarded(ctx, &fr)
		if err != nil {
			return nil, err
		}
		return proto.Marshal(resp)
	case rpcStepdown:
		var sr command.StepdownRequest
		if err := proto.Unmarshal(req, &sr); err != nil {
			return nil, fmt.Errorf("decode stepdown request: %w", err)
		}
		if err := s.authorize(sr.GetCredentials(), "change the leader", auth.LeaderOps); err != nil {
			return nil, err
		}
		return nil, s.stepdownLocal(ctx, sr.GetNodeId(), sr.GetWait())
	case rpcLoad:
		return nil, s.serveLoad(ctx, req)
	case rpcRecoverState:
		return s.serveRecoveryState(req)
	}
	return nil, fmt.Errorf("unknown internal call %d", method)
}

func (s *Store) handleStreamRPC(ctx context.Context, method uint8, req []byte, w io.Writer) error {
	if method == rpcBackup {
		return s.serveBackup(ctx, req, w)
	}
	return fmt.Errorf("unknown internal stream call %d", method)
}

func (s *Store) nodeMeta() *command.NodeMetaResponse {
	return &command.NodeMetaResponse{
		HttpAddr:     s.httpURL(),
		CommitIndex:  s.node.Commit(),
		AppliedIndex: s.applied.Index(),
		Version:      s.cfg.Version,
		LeaderRaftId: s.node.Leader(),
		ClusterId:    s.clusterID.Load(),
	}
}

// NodeMeta asks the node at raftAddr for its metadata (the local node answers from memory).
func (s *Store) NodeMeta(ctx context.Context, raftAddr string) (*command.NodeMetaResponse, error) {
	if raftAddr == s.cfg.RaftAddr {
		return s.nodeMeta(), nil
	}
	b, err := s.tr.Call(ctx, raftAddr, rpcNodeMeta, nil)
	if err != nil {
		return nil, err
	}
	var nm command.NodeMetaResponse
	if err := proto.Unmarshal(b, &nm); err != nil {
		return nil, fmt.Errorf("decode node metadata from %s: %w", raftAddr, err)
	}
	return &nm, nil
}

// leaderAddr is the Raft address of the leader, if this node knows one.
func (s *Store) leaderAddr() (string, error) {
	id := s.node.Leader()
	if id == 0 {
		return "", ErrNoLeader
	}
	if id == s.raftID {
		return s.cfg.RaftAddr, nil
	}
	m, ok := s.members.get(id)
	if !ok {
		return "", ErrNoLeader
	}
	return m.GetRaftAddr(), nil
}

// callLeader sends an internal call to the leader. Calls that change something are sent at most once:
// after a lost connection there is no telling whether the leader ran it.
func (s *Store) callLeader(ctx context.Context, method uint8, req proto.Message) ([]byte, error) {
	addr, err := s.leaderAddr()
	if err != nil {
		return nil, err
	}
	attachCredentials(ctx, req)
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	b, err = s.tr.CallOnce(ctx, addr, method, b)
	return b, err
}

// Forward sends a request to the leader and returns its answer (the follower side of transparent
// forwarding). The leader runs it as if it had received it itself.
func (s *Store) Forward(ctx context.Context, fr *command.ForwardRequest) (Response, error) {
	if deadline, ok := ctx.Deadline(); ok {
		fr.TimeoutNs = int64(time.Until(deadline))
	}
	b, err := s.callLeader(ctx, rpcForward, fr)
	if err != nil {
		return Response{}, err
	}
	var resp command.Response
	if err := proto.Unmarshal(b, &resp); err != nil {
		return Response{}, fmt.Errorf("decode forwarded response: %w", err)
	}
	return Response{Results: db.ResultsFromWire(resp.GetResults()), Error: resp.GetError(), RaftIndex: resp.GetRaftIndex()}, nil
}

// serveForwarded runs a request forwarded by a follower. It does not forward again: a node that is not
// the leader says so, and the follower reports it.
func (s *Store) serveForwarded(ctx context.Context, fr *command.ForwardRequest) (*command.Response, error) {
	if fr.GetTimeoutNs() > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(fr.GetTimeoutNs()))
		defer cancel()
	}
	env := db.Env{NowUnixMs: fr.GetNowUnixMs(), Seed: fr.GetSeed()}
	var resp Response
	var err error
	req := fr.GetRequest()
	if fr.GetRead() {
		resp, err = s.Query(ctx, req, ReadOptions{
			Level: Level(fr.GetLevel()), Freshness: time.Duration(fr.GetFreshnessNs()), FreshnessStrict: fr.GetFreshnessStrict(),
		}, env)
	} else {
		resp, err = s.Execute(ctx, req, env)
	}
	if err != nil {
		return nil, err
	}
	return &command.Response{Results: db.ResultsToWire(resp.Results), Error: resp.Error, RaftIndex: resp.RaftIndex}, nil
}
