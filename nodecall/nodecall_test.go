package nodecall

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
)

// Every internal call that needs a permission carries the caller's credentials to the leader.
func TestAttachCredentials(t *testing.T) {
	ctx := WithCredentials(context.Background(), "alice", "pw")
	for _, req := range []proto.Message{&command.ForwardRequest{}, &command.JoinRequest{}, &command.NotifyRequest{},
		&command.RemoveRequest{}, &command.StepdownRequest{}, &command.LoadRequest{}, &command.BackupRequest{}} {
		attach(ctx, req)
		got := req.ProtoReflect().Get(req.ProtoReflect().Descriptor().Fields().ByName("credentials")).Message().Interface()
		if c := got.(*command.Credentials); c.GetUsername() != "alice" || c.GetPassword() != "pw" {
			t.Errorf("%T carries %v", req, c)
		}
	}
	// Credentials already set (a node's own -join-as) are kept.
	jr := &command.JoinRequest{Credentials: &command.Credentials{Username: "joiner"}}
	attach(ctx, jr)
	if jr.GetCredentials().GetUsername() != "joiner" {
		t.Errorf("attachCredentials replaced the join credentials: %v", jr.GetCredentials())
	}
	// Without credentials in the context nothing changes.
	fr := &command.ForwardRequest{}
	attach(context.Background(), fr)
	if fr.GetCredentials() != nil {
		t.Errorf("credentials appeared from nowhere: %v", fr.GetCredentials())
	}
}
