package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const helloVersion = 1

// Hello opens every connection: who is calling, from which cluster, and whom the caller thinks it is
// calling. FromClusterID is zero while the caller belongs to no cluster yet (a new or wiped node).
type Hello struct {
	FromID        uint64
	FromNodeID    string
	FromAddr      string
	FromClusterID uint64
	ToID          uint64
	ToNodeID      string
}

// marshal encodes h as the body of a hello frame (see wire.go).
func (h Hello) marshal() ([]byte, error) {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+3*binary.MaxVarintLen32+
		len(h.FromNodeID)+len(h.FromAddr)+len(h.ToNodeID))
	b = append(b, helloVersion)
	b = binary.AppendUvarint(b, h.FromID)
	b = appendString(b, h.FromNodeID)
	b = appendString(b, h.FromAddr)
	b = binary.AppendUvarint(b, h.ToID)
	b = appendString(b, h.ToNodeID)
	b = binary.AppendUvarint(b, h.FromClusterID)
	if len(b) > maxHelloFrame {
		return nil, fmt.Errorf("hello is %d bytes, limit %d (node ids or address too long)", len(b), maxHelloFrame)
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// parseHello decodes a hello frame body. It never trusts a length beyond the bytes actually present.
func parseHello(b []byte) (Hello, error) {
	if len(b) == 0 {
		return Hello{}, errors.New("empty hello")
	}
	if b[0] != helloVersion {
		return Hello{}, fmt.Errorf("unsupported hello version %d (want %d)", b[0], helloVersion)
	}
	d := decoder{b: b[1:]}
	h := Hello{
		FromID:     d.uvarint("from id"),
		FromNodeID: d.string("from node id"),
		FromAddr:   d.string("from addr"),
		ToID:       d.uvarint("to id"),
		ToNodeID:   d.string("to node id"),
	}
	if d.err == nil && len(d.b) > 0 {
		h.FromClusterID = d.uvarint("from cluster id") // an addition: absent from a caller that predates it
	}
	if d.err != nil {
		return Hello{}, fmt.Errorf("bad hello: %w", d.err)
	}
	return h, nil
}

// decoder reads fields from a byte slice, remembering the first error so call sites stay linear.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%s: truncated or overlong varint", field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(field string) string {
	n := d.uvarint(field + " length")
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%s: length %d exceeds the %d bytes left", field, n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
