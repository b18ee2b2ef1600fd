// Package transport owns all node-to-node traffic of a raftlite node on its single Raft port: Raft message
// streams, database snapshot streams, and internal request/response calls whose payloads it treats as opaque.
package transport

import "time"

// Wire protocol
//
// Every connection opens with one kind byte: 1 = raft stream (appends), 2 = snapshot, 3 = rpc, 4 = stream
// rpc, 5 = raft control stream (every raft message but appends and snapshots).
// Everything after it travels in frames: [uvarint length][length bytes]. A reader compares the claimed length
// with its limit before allocating anything and closes the connection if it is too large: MaxFrame for raft
// messages and rpc payloads, 4 KiB for hellos, 64 KiB for status frames, 1 MiB for data chunks. Frames above
// 64 KiB are read in growing steps, so memory follows the bytes that actually arrive, not the claim.
// Fixed-width integers are big-endian.
//
//	hello frame:  [version=1][uvarint FromID][str FromNodeID][str FromAddr][uvarint ToID][str ToNodeID]
//	              [uvarint FromClusterID, optional: 0 if absent]
//	              str = [uvarint len][bytes]. Bytes after FromClusterID are ignored, leaving room for
//	              compatible additions; an incompatible change bumps the version.
//	status frame: [0] = OK, or [1][error text]
//
//	raft stream (1): one direction only, dialer (D) -> acceptor (A)
//	  D: kind, hello                      A: status (OK or the AcceptStream error text)
//	  D: frame(proto.Marshal(raftpb.Message)) ...   until either side closes; A never writes again.
//	  Each node dials its own stream to each peer; replies travel on the peer's stream back.
//
//	raft control stream (5): exactly as (1), for every other message type (heartbeats, votes, answers),
//	  so that they never queue behind large appends. A node that closes this kind of connection without
//	  a status (an older version) gets those messages on its stream (1) instead.
//
//	snapshot (2): one snapshot per connection
//	  D: kind, hello                      A: status
//	  D: frame(proto.Marshal(MsgSnap)), chunk frames (1 byte .. 1 MiB each), an empty frame,
//	     trailer [8-byte total data length][4-byte CRC32-Castagnoli of the data]
//	  A: status (OK once the handler has stored the verified data)
//
//	rpc (3): persistent, requests served one after another until EOF
//	  D: kind, hello (unanswered: it only names the caller), then per call: frame([method][request])
//	  A: frame([0][response]) or frame([1][error text])
//
//	stream rpc (4): one call per connection
//	  D: kind, hello (unanswered), frame([method][request])
//	  A: status; if OK: chunk frames, an empty frame, trailer [4-byte CRC32-Castagnoli of the data]
//	  A handler that fails after data has started cannot be reported in-band, so the acceptor cuts the
//	  connection and the caller's reader returns an error.

// Connection kinds: the first byte of every connection.
const (
	kindRaft        byte = 1
	kindSnapshot    byte = 2
	kindRPC         byte = 3
	kindStreamRPC   byte = 4
	kindRaftControl byte = 5
)

// Status bytes of status frames and rpc responses. An error is its text, preceded, for an error with a
// code (package errcode), by the code's byte.
const (
	statusOK         byte = 0
	statusError      byte = 1
	statusCodedError byte = 2
)

const (
	defaultQueueSize = 4096
	defaultMaxFrame  = 256 << 20

	maxHelloFrame  = 4 << 10
	maxStatusFrame = 64 << 10
	maxErrorText   = maxStatusFrame - 1
	maxChunk       = 1 << 20   // largest data chunk a reader accepts
	sendChunk      = 256 << 10 // chunk size writers use: well under maxChunk, large enough to amortise headers
	frameStep      = 64 << 10  // frames above this are read in growing steps

	// A restarted peer must be contacted again within about half a second, so the backoff cap stays short.
	backoffMin = 50 * time.Millisecond
	backoffMax = 500 * time.Millisecond

	// Each unreachable report is a trip through the raft loop; one per peer per interval is plenty.
	unreachableInterval = 100 * time.Millisecond

	dialTimeout        = 5 * time.Second
	raftWriteTimeout   = 10 * time.Second // a peer that stops reading for this long is treated as gone
	snapshotAckTimeout = 5 * time.Minute  // the receiver may fsync / verify a large database before answering
	rpcIdleTimeout     = 5 * time.Minute
	pooledMaxAge       = 4 * time.Minute // below rpcIdleTimeout, so we never pick a conn the server is closing
	maxIdlePerAddr     = 64              // as many as concurrent forwarded requests commonly are: a dial per call costs more than the call

	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3

	maxBatch = 1024 // raft messages handed to HandleMessages at once
)

// limits holds the server-side timeouts and caps; a struct rather than constants so tests can shrink them.
type limits struct {
	handshakeTimeout time.Duration // kind byte, hello and first rpc request must arrive within this
	streamIdle       time.Duration // longest silence inside a snapshot or stream-rpc data stream
	maxConns         int           // concurrent inbound connections
}

func defaultLimits() limits {
	return limits{
		handshakeTimeout: 10 * time.Second,
		streamIdle:       time.Minute,
		maxConns:         1024,
	}
}
