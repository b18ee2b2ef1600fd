package raftlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

const (
	recEntry         byte = 1
	recHardState     byte = 2
	recSnapshot      byte = 3
	recSegmentHeader byte = 4
)

const (
	frameSize = 8 // length + CRC
	// maxRecordSize bounds what a reader will allocate for one record, so a corrupt length field can
	// never make Open allocate gigabytes; writers refuse to produce anything larger.
	maxRecordSize = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var marshalOpts = proto.MarshalOptions{}

// errRecordTooLarge is returned by writers for a record the reader would refuse.
var errRecordTooLarge = errors.New("record larger than 1 GiB")

// badRecordError means the bytes at this position are not a record we wrote: a torn write or corruption.
// It is the only error that tail repair may act on; I/O errors must never cause truncation.
type badRecordError struct {
	reason string
	// torn: the record is incomplete, which only a write cut short leaves (and a write is acknowledged
	// only after its fsync, so nothing acknowledged is lost). Otherwise the record is whole but wrong:
	// damage after the fact, which may have taken acknowledged data with it.
	torn bool
}

func (e *badRecordError) Error() string { return "bad record: " + e.reason }

func badRecord(format string, args ...any) error {
	return &badRecordError{reason: fmt.Sprintf(format, args...)}
}

func tornRecord(format string, args ...any) error {
	return &badRecordError{reason: fmt.Sprintf(format, args...), torn: true}
}

func isTorn(err error) bool {
	var b *badRecordError
	return errors.As(err, &b) && b.torn
}

func isBadRecord(err error) bool {
	var b *badRecordError
	return errors.As(err, &b)
}

// beginRecord reserves the frame and writes the type byte; finishRecord fills in length and CRC once the
// payload has been appended in place, so encoding needs no scratch buffer.
func beginRecord(buf []byte, typ byte) ([]byte, int) {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0, typ)
	return buf, start
}

func finishRecord(buf []byte, start int) ([]byte, error) {
	body := buf[start+frameSize:]
	if len(body) > maxRecordSize {
		return buf[:start], errRecordTooLarge
	}
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(body, castagnoli))
	return buf, nil
}

func appendProtoRecord(buf []byte, typ byte, m proto.Message) ([]byte, error) {
	buf, start := beginRecord(buf, typ)
	buf, err := marshalOpts.MarshalAppend(buf, m)
	if err != nil {
		return buf[:start], err
	}
	return finishRecord(buf, start)
}

// segHeader is the state restated at the start of every segment.
type segHeader struct {
	prevIndex, prevTerm uint64
	hs                  hardState
	snap                snapMeta
}

func appendHeaderRecord(buf []byte, h segHeader) ([]byte, error) {
	hsb, err := proto.Marshal(h.hs.proto())
	if err != nil {
		return buf, err
	}
	snb, err := proto.Marshal(h.snap.proto())
	if err != nil {
		return buf, err
	}
	buf, start := beginRecord(buf, recSegmentHeader)
	buf = protowire.AppendTag(buf, 1, protowire.VarintType)
	buf = protowire.AppendVarint(buf, h.prevIndex)
	buf = protowire.AppendTag(buf, 2, protowire.VarintType)
	buf = protowire.AppendVarint(buf, h.prevTerm)
	buf = protowire.AppendTag(buf, 3, protowire.BytesType)
	buf = protowire.AppendBytes(buf, hsb)
	buf = protowire.AppendTag(buf, 4, protowire.BytesType)
	buf = protowire.AppendBytes(buf, snb)
	return finishRecord(buf, start)
}

func decodeHeader(p []byte) (segHeader, error) {
	var h segHeader
	for len(p) > 0 {
		num, typ, n := protowire.ConsumeTag(p)
		if n < 0 {
			return h, badRecord("segment header: %v", protowire.ParseError(n))
		}
		p = p[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(p)
			if n < 0 {
				return h, badRecord("segment header: %v", protowire.ParseError(n))
			}
			p = p[n:]
			if num == 1 {
				h.prevIndex = v
			} else {
				h.prevTerm = v
			}
		case (num == 3 || num == 4) && typ == protowire.BytesType:
			b, n := protowire.ConsumeBytes(p)
			if n < 0 {
				return h, badRecord("segment header: %v", protowire.ParseError(n))
			}
			p = p[n:]
			if num == 3 {
				var hs raftpb.HardState
				if err := proto.Unmarshal(b, &hs); err != nil {
					return h, badRecord("segment header hard state: %v", err)
				}
				h.hs = hardStateOf(&hs)
			} else {
				var md raftpb.SnapshotMetadata
				if err := proto.Unmarshal(b, &md); err != nil {
					return h, badRecord("segment header snapshot: %v", err)
				}
				h.snap = snapMetaOf(&md)
			}
		default:
			// Unknown fields are skipped so a newer writer's extra header fields don't brick old readers.
			n := protowire.ConsumeFieldValue(num, typ, p)
			if n < 0 {
				return h, badRecord("segment header: %v", protowire.ParseError(n))
			}
			p = p[n:]
		}
	}
	return h, nil
}

// recordReader reads framed records from a segment whose size is known up front, so that a length field
// can be checked against the bytes actually present before anything is allocated for it.
type recordReader struct {
	r    *bufio.Reader
	off  int64 // offset of the next record
	size int64
	body []byte
}

func newRecordReader(r io.Reader, size int64) *recordReader {
	return &recordReader{r: bufio.NewReaderSize(r, int(min(size+1, 64<<10))), size: size}
}

// next returns the type and payload of the record at rr.off (payload valid until the next call), io.EOF at
// a clean end of file, a *badRecordError for bytes that are not a whole valid record, or an I/O error.
func (rr *recordReader) next() (byte, []byte, error) {
	remaining := rr.size - rr.off
	if remaining == 0 {
		return 0, nil, io.EOF
	}
	if remaining < frameSize {
		return 0, nil, tornRecord("torn frame: %d bytes left", remaining)
	}
	var hdr [frameSize]byte
	if _, err := io.ReadFull(rr.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int64(binary.LittleEndian.Uint32(hdr[0:4]))
	sum := binary.LittleEndian.Uint32(hdr[4:8])
	switch {
	case n == 0:
		return 0, nil, tornRecord("zero length") // a zero-filled tail: space allocated, never written
	case n > maxRecordSize:
		return 0, nil, badRecord("length %d exceeds limit", n)
	case n > remaining-frameSize:
		return 0, nil, tornRecord("torn record: length %d, %d bytes left", n, remaining-frameSize)
	}
	if int64(cap(rr.body)) < n {
		rr.body = make([]byte, n)
	}
	body := rr.body[:n]
	if _, err := io.ReadFull(rr.r, body); err != nil {
		return 0, nil, err
	}
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return 0, nil, badRecord("crc mismatch: stored %08x, computed %08x", sum, got)
	}
	if typ := body[0]; typ < recEntry || typ > recSegmentHeader {
		return 0, nil, badRecord("unknown record type %d", typ)
	}
	rr.off += frameSize + n
	return body[0], body[1:], nil
}
