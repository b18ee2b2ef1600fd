// Package nodecall is the calls nodes make to each other over the transport: their method numbers, the
// credentials of the client a call acts for (the node that serves the call checks them again against its
// own -auth file), and a client that calls a node, or the leader.
package nodecall

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/raftlite/raftlite/auth"
	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/errcode"
)

// The methods of internal calls. Values are fixed: nodes of different versions call each other.
const (
	NodeMeta     uint8 = 1 // the node's addresses and log position
	Join         uint8 = 2 // add or update a member
	Notify       uint8 = 3 // announce a node for -bootstrap-expect
	Remove       uint8 = 4 // remove a member
	Forward      uint8 = 5 // run a request on the leader
	Stepdown     uint8 = 6 // hand leadership over
	Load         uint8 = 7 // load a database through the leader's log
	Backup       uint8 = 8 // stream the leader's backup
	RecoverState uint8 = 9 // a survivor's log position during a peers.json recovery (JSON)
	// CDCHighWatermark is the leader telling a voter how far CDC delivery got (8 bytes, big-endian).
	CDCHighWatermark uint8 = 10
)

type credentialsKey struct{}

// WithCredentials returns a context carrying a caller's credentials: calls this node passes on to the
// leader carry them, and the leader checks them again.
func WithCredentials(ctx context.Context, username, password string) context.Context {
	return context.WithValue(ctx, credentialsKey{}, &command.Credentials{Username: username, Password: password})
}

// WithCallerCredentials is WithCredentials for credentials received with a call (nil: none).
func WithCallerCredentials(ctx context.Context, c *command.Credentials) context.Context {
	if c == nil {
		return ctx
	}
	return context.WithValue(ctx, credentialsKey{}, c)
}

// attach puts the caller's credentials from ctx into an internal call (every call that needs a permission
// has a "credentials" field) that does not carry any yet.
func attach(ctx context.Context, req proto.Message) {
	c, _ := ctx.Value(credentialsKey{}).(*command.Credentials)
	if c == nil {
		return
	}
	m := req.ProtoReflect()
	if fd := m.Descriptor().Fields().ByName("credentials"); fd != nil && !m.Has(fd) {
		m.Set(fd, protoreflect.ValueOfMessage(c.ProtoReflect()))
	}
}

// Authorizer decides whether credentials carry a permission; *auth.Store implements it.
type Authorizer interface {
	Allow(username, password string, perm auth.Perm) bool
}

// Authorize checks that c holds one of perms (always, when a is nil: -auth not given). The message never
// names the password.
func Authorize(a Authorizer, c *command.Credentials, what string, perms ...auth.Perm) error {
	if a == nil {
		return nil
	}
	for _, p := range perms {
		if a.Allow(c.GetUsername(), c.GetPassword(), p) {
			return nil
		}
	}
	user := c.GetUsername()
	if user == "" {
		user = "an anonymous caller"
	}
	return fmt.Errorf("%w: %s may not %s", errcode.ErrUnauthorized, user, what)
}

// Transport makes calls to other nodes; *transport.Transport implements it.
type Transport interface {
	Call(ctx context.Context, addr string, method uint8, req []byte) ([]byte, error)
	CallOnce(ctx context.Context, addr string, method uint8, req []byte) ([]byte, error)
	CallStream(ctx context.Context, addr string, method uint8, req []byte) (io.ReadCloser, error)
}

// Client calls other nodes.
type Client struct {
	Transport Transport
	// Self is this node's Raft address, and Meta its own metadata: a node answers about itself from memory.
	Self string
	Meta func() *command.NodeMetaResponse
	// LeaderAddr is the leader's Raft address, or errcode.ErrNoLeader.
	LeaderAddr func() (string, error)
}

// NodeMeta asks the node at raftAddr for its metadata.
func (c *Client) NodeMeta(ctx context.Context, raftAddr string) (*command.NodeMetaResponse, error) {
	if raftAddr == c.Self {
		return c.Meta(), nil
	}
	b, err := c.Transport.Call(ctx, raftAddr, NodeMeta, nil)
	if err != nil {
		return nil, err
	}
	var nm command.NodeMetaResponse
	if err := proto.Unmarshal(b, &nm); err != nil {
		return nil, fmt.Errorf("decode node metadata from %s: %w", raftAddr, err)
	}
	return &nm, nil
}

// CallLeader sends an internal call to the leader, with the credentials ctx carries. Calls that change
// something are sent at most once: after a lost connection there is no telling whether the leader ran it.
func (c *Client) CallLeader(ctx context.Context, method uint8, req proto.Message) ([]byte, error) {
	addr, err := c.LeaderAddr()
	if err != nil {
		return nil, err
	}
	attach(ctx, req)
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	return c.Transport.CallOnce(ctx, addr, method, b)
}

// StreamFromLeader makes a call whose answer the leader streams.
func (c *Client) StreamFromLeader(ctx context.Context, method uint8, req proto.Message) (io.ReadCloser, error) {
	addr, err := c.LeaderAddr()
	if err != nil {
		return nil, err
	}
	attach(ctx, req)
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	return c.Transport.CallStream(ctx, addr, method, b)
}
