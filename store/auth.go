package store

import (
	"github.com/raftlite/raftlite/auth"
	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/nodecall"
)

// Authorizer decides whether credentials carry a permission; *auth.Store implements it.
type Authorizer = nodecall.Authorizer

// ErrUnauthorized is returned when an internal call's credentials lack the permission it needs.
var ErrUnauthorized error = errcode.ErrUnauthorized

// WithCredentials returns a context carrying a caller's credentials: calls this node passes on to the leader
// carry them, and the leader checks them again.
var WithCredentials = nodecall.WithCredentials

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

func (h *handler) authorizeForward(fr *command.ForwardRequest) error {
	s := (*Store)(h)
	what, needs := forwardedPerms(fr)
	for _, anyOf := range needs {
		if err := nodecall.Authorize(s.cfg.Auth, fr.GetCredentials(), what, anyOf...); err != nil {
			return err
		}
	}
	return nil
}
