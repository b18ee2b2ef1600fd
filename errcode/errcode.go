// Package errcode names the errors that callers act on (a client through the HTTP API, or another node
// through an internal call). Each has a Code, carried across the wire between nodes, one sentinel to test
// with errors.Is, and one HTTP status. Nothing matches on the text of an error.
package errcode

import (
	"errors"
	"net/http"
)

// Code identifies a kind of error on the wire. Values are fixed: nodes of different versions exchange
// them. 0 is an error without a code.
type Code uint8

const (
	Unknown        Code = 0
	NotLeader      Code = 1  // this node does not lead; the request should go to the leader
	NoLeader       Code = 2  // no leader is known
	Unauthorized   Code = 3  // the credentials lack a permission
	Fault          Code = 4  // this node's disk refuses writes (full, read-only, failing)
	Timeout        Code = 5  // waited too long for the log
	OutcomeUnknown Code = 6  // proposed, then leadership changed: it may or may not be applied
	LeaderLost     Code = 7  // proposed, then another leader's entry took its place: not applied
	Stopped        Code = 8  // the node is stopping
	NotOpen        Code = 9  // the node is not running yet
	UnknownNode    Code = 10 // no member has that node-id
	TooLarge       Code = 11 // the request is larger than a log entry may be
	StaleRead      Code = 12 // a read at level none would be older than its freshness allows
	NotSingleNode  Code = 13 // /boot on a cluster of more than one node
	NothingNew     Code = 14 // a snapshot with nothing applied since the last one
	BadRequest     Code = 15 // the request itself is wrong
	Conflict       Code = 16 // the cluster's present state does not allow it (the only voter, no quorum left, no one to hand over to)
)

// Error is an error with a code. Two Errors are the same error (errors.Is) when their codes are.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Is makes every error with the sentinel's code match the sentinel, whatever its text.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code && e.Code != Unknown
}

// WireCode is the code the transport sends with the error's text.
func (e *Error) WireCode() uint8 { return uint8(e.Code) }

// New returns an error with a code.
func New(code Code, msg string) *Error { return &Error{Code: code, Msg: msg} }

// The sentinels, one per code.
var (
	ErrNotLeader      = New(NotLeader, "not leader")
	ErrNoLeader       = New(NoLeader, "leader not found")
	ErrUnauthorized   = New(Unauthorized, "unauthorized")
	ErrFault          = New(Fault, "disk fault")
	ErrTimeout        = New(Timeout, "timed out waiting for the log")
	ErrOutcomeUnknown = New(OutcomeUnknown, "leadership changed while committing log; the request may or may not have been applied")
	ErrLeaderLost     = New(LeaderLost, "leadership lost while committing log")
	ErrStopped        = New(Stopped, "store stopped")
	ErrNotOpen        = New(NotOpen, "store not open")
	ErrUnknownNode    = New(UnknownNode, "node is not a member of the cluster")
	ErrTooLarge       = New(TooLarge, "request too large for the log")
	ErrStaleRead      = New(StaleRead, "stale read")
	ErrNotSingleNode  = New(NotSingleNode, "not single-node")
	ErrNothingNew     = New(NothingNew, "nothing new to snapshot")
	ErrBadRequest     = New(BadRequest, "bad request")
	ErrConflict       = New(Conflict, "not possible in the cluster's present state")
)

// Of returns the code of err, or Unknown.
func Of(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Unknown
}

// WireCode is the code to send with err across the wire (0 if it has none).
func WireCode(err error) uint8 { return uint8(Of(err)) }

// FromWire rebuilds an error received from another node: its code, if any, and its text.
func FromWire(code uint8, msg string) error {
	return &Error{Code: Code(code), Msg: msg}
}

// HTTPStatus is the status an API answer carries for an error with this code when the error is the whole
// answer. rqlite reports most failures of a request that runs SQL inside a 200 body instead; the API
// decides which. The rule: 4xx when the request must change (or the user must act first), 503 when the
// cluster cannot serve it now and the same request may succeed later, 500 only for a failing disk and for
// errors nobody gave a code (a bug, or a peer of a newer version).
func HTTPStatus(code Code) int {
	switch code {
	case BadRequest:
		return http.StatusBadRequest
	case Unauthorized:
		return http.StatusUnauthorized
	case UnknownNode:
		// The request names a node that is not there: the same answer as a DELETE of something absent, so
		// that a script can treat a removal that already happened as done without reading the text.
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case NotLeader, NoLeader, NotOpen, NotSingleNode, Stopped, Timeout, OutcomeUnknown, LeaderLost, StaleRead:
		return http.StatusServiceUnavailable
	}
	// Fault (the disk), and Unknown. NothingNew is no failure: /snapshot answers 204 for it itself.
	return http.StatusInternalServerError
}
