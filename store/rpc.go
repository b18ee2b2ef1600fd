package store

import (
	"context"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/nodecall"
)

// handleRPC serves an internal call: the cluster's own (joins, removals and the like), or the store's
// (forwarded requests and loads).
func (h *handler) handleRPC(ctx context.Context, method uint8, req []byte) ([]byte, error) {
	s := (*Store)(h)
	if resp, handled, err := s.cluster.HandleRPC(ctx, method, req); handled {
		return resp, err
	}
	switch method {
	case nodecall.Forward:
		var fr command.ForwardRequest
		if err := proto.Unmarshal(req, &fr); err != nil {
			return nil, fmt.Errorf("decode forwarded request: %w", err)
		}
		if err := h.authorizeForward(&fr); err != nil {
			return nil, err
		}
		resp, err := h.serveForwarded(ctx, &fr)
		if err != nil {
			return nil, err
		}
		return proto.Marshal(resp)
	case nodecall.Load:
		return nil, h.serveLoad(ctx, req)
	case nodecall.CDCHighWatermark:
		return nil, h.serveHighWatermark(req)
	}
	return nil, fmt.Errorf("unknown internal call %d", method)
}

func (h *handler) handleStreamRPC(ctx context.Context, method uint8, req []byte, w io.Writer) error {
	if method == nodecall.Backup {
		return h.serveBackup(ctx, req, w)
	}
	return fmt.Errorf("unknown internal stream call %d", method)
}

// NodeMeta asks the node at raftAddr for its metadata (the local node answers from memory).
func (s *Store) NodeMeta(ctx context.Context, raftAddr string) (*command.NodeMetaResponse, error) {
	return s.calls.NodeMeta(ctx, raftAddr)
}

// Forward sends a request to the leader and returns its answer (the follower side of transparent
// forwarding). The leader runs it as if it had received it itself.
func (s *Store) Forward(ctx context.Context, fr *command.ForwardRequest) (Response, error) {
	if deadline, ok := ctx.Deadline(); ok {
		fr.TimeoutNs = int64(time.Until(deadline))
	}
	b, err := s.calls.CallLeader(ctx, nodecall.Forward, fr)
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
func (h *handler) serveForwarded(ctx context.Context, fr *command.ForwardRequest) (*command.Response, error) {
	s := (*Store)(h)
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
