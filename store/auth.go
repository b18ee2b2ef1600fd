package store

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/raftlite/raftlite/auth"
	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/errcode"
)

// Authorizer decides whether credentials carry a permission; *auth.Store implements it.
type Authorizer interface {
	Allow(username, password string, perm auth.Perm) bool
}

// ErrUnauthorized is returned when an internal call's credentials lack the permission it needs.
var ErrUnauthorized error = errcode.ErrUnauthorized

type credentialsKey struct{}

// WithCredentials returns a context carrying a caller's credentials: calls this node passes on to the leader
// carry them, and the leader checks them again.
func WithCredentials(ctx context.Context, username, password string) context.Context {
	return context.WithValue(ctx, credentialsKey{}, &command.Credentials{Username: username, Password: password})
}

func withCredentials(ctx context.Context, c *command.Credentials) context.Context {
	if c == nil {
		return ctx
	}
	return context.WithValue(ctx, credentialsKey{}, c)
}

func credentialsFrom(ctx context.Context) *command.Credentials {
	c, _ := ctx.Value(credentialsKey{}).(*command.Credentials)
	return c
}

// attachCredentials puts the caller's credentials from ctx into an internal call (every call that needs
// a permission has a "credentials" field) that does not carry any yet.
func attachCredentials(ctx context.Context, req proto.Message) {
	c := credentialsFrom(ctx)
	if c == nil {
		return
	}
	m := req.ProtoReflect()
	if fd := m.Descriptor().Fields().ByName("credentials"); fd != nil && !m.Has(fd) {
		m.Set(fd, protoreflect.ValueOfMessage(c.ProtoReflect()))
	}
}

// authorize checks that c holds one of perms. The message never names the password.
func (s *Store) authorize(c *command.Credentials, what string, perms ...auth.Perm) error {
	if s.cfg.Auth == nil {
		return nil
	}
	for _, p := range perms {
		if s.cfg.Auth.Allow(c.GetUsername(), c.GetPassword(), p) {
			return nil
		}
	}
	user := c.GetUsername()
	if user == "" {
		user = "an anonymous caller"
	}
	return fmt.Errorf("%w: %s may not %s", ErrUnauthorized, user, what)
}

// forwardedPerms are the permissions a forwarded request needs: the same as at the HTTP API. A load sent
// as SQL arrives as a write, and "load" grants at least that much.
func forwardedPerms(fr *command.ForwardRequest) (string, [][]auth.Perm) {
	switch fr.GetRequest().GetMode() {
	case command.Mode_MODE_QUERY:
		return "query", [][]auth.Perm{{auth.Query}}
	case command.Mode_MODE_REQUEST:
		return "query and execute", [][]auth.Perm{{auth.Query}, {auth.Execute, auth.Load}}
	default:
		return "execute", [][]auth.Perm{{auth.Execute, auth.Load}}
	}
}

func (s *Store) authorizeForward(fr *command.ForwardRequest) error {
	what, needs := forwardedPerms(fr)
	for _, anyOf := range needs {
		if err := s.authorize(fr.GetCredentials(), what, anyOf...); err != nil {
			return err
		}
	}
	return nil
}

// joinPerms: a voter needs "join"; a read replica "join-read-only", "join-read-replica" or "join". Changing
// a voter's entry (its address, or making it a learner) needs "join": a read-replica permission must not
// let a caller demote or redirect a voting member.
func (s *Store) joinPerms(m *command.Member) []auth.Perm {
	if m.GetVoter() || s.members.isVoterEntry(m) {
		return []auth.Perm{auth.Join}
	}
	return []auth.Perm{auth.Join, auth.JoinReadOnly, auth.JoinReadReplica}
}
