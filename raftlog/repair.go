package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// ErrCorrupt reports damage Open cannot repair without losing data that may have been acknowledged.
var ErrCorrupt = errors.New("raft log corrupt")

// dropTornLastSegments removes trailing segments whose header was torn by a crash during their creation.
// Creation writes and fsyncs the header before anything else goes into the file (and fsyncs the previous
// segment first), so a torn header has nothing behind it and the file holds nothing acknowledged. A bad
// header with records behind it was damaged later: dropping it would silently lose acknowledged entries
// and votes, so Open refuses instead. So it does if the only segment left would be gone although it is not
// the first one ever written (older ones were compacted away, so it held the log's whole state).
func (l *Log) dropTornLastSegments(segs []*segment) ([]*segment, error) {
	for len(segs) > 0 {
		seg := segs[len(segs)-1]
		_, size, err := readHeader(seg)
		if err == nil {
			return segs, nil
		}
		if !isBadRecord(err) {
			return nil, err
		}
		if end, ok := headerRecordEnd(seg); ok && end < size {
			return nil, fmt.Errorf("%w: segment %s: its header is damaged but records follow it (%v); refusing to discard them", ErrCorrupt, seg.path, err)
		}
		if len(segs) == 1 && seg.seq != 1 {
			return nil, fmt.Errorf("%w: segment %s: the only segment has a damaged header (%v); refusing to start from an empty log", ErrCorrupt, seg.path, err)
		}
		l.logger.Warn("raft log: removing last segment with a torn header",
			"file", seg.path, "offset", 0, "dropped_bytes", size, "reason", err)
		if err := os.Remove(seg.path); err != nil {
			return nil, fmt.Errorf("remove torn raft log segment %s: %w", seg.path, err)
		}
		if err := fsync(l.dirf); err != nil {
			return nil, fmt.Errorf("sync raft log dir %s: %w", l.dir, err)
		}
		segs = segs[:len(segs)-1]
	}
	return segs, nil
}

// headerRecordEnd is the offset where the segment's first record ends according to its length field, if
// the file is long enough to hold that field.
func headerRecordEnd(seg *segment) (int64, bool) {
	f, err := os.Open(seg.path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var b [4]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return 0, false
	}
	return frameSize + int64(binary.LittleEndian.Uint32(b[:])), true
}

// readHeader reads and decodes the first record of seg; a *badRecordError means it is not a valid header.
func readHeader(seg *segment) (segHeader, int64, error) {
	f, err := os.Open(seg.path)
	if err != nil {
		return segHeader{}, 0, fmt.Errorf("open raft log segment %s: %w", seg.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return segHeader{}, 0, fmt.Errorf("stat raft log segment %s: %w", seg.path, err)
	}
	rr := newRecordReader(f, fi.Size())
	typ, payload, err := rr.next()
	if err == io.EOF {
		return segHeader{}, fi.Size(), badRecord("empty segment")
	}
	if err != nil {
		if !isBadRecord(err) {
			err = fmt.Errorf("read raft log segment %s: %w", seg.path, err)
		}
		return segHeader{}, fi.Size(), err
	}
	if typ != recSegmentHeader {
		return segHeader{}, fi.Size(), badRecord("first record has type %d, not a segment header", typ)
	}
	h, err := decodeHeader(payload)
	return h, fi.Size(), err
}

// replaySegment applies every record of seg to st. In the last segment a bad record is a torn or corrupt
// tail: the file is cut at that record and replay ends there. Anywhere else it is an error, because
// later segments were built on top of the damaged data.
func (l *Log) replaySegment(seg *segment, st *memState, last bool) error {
	f, err := os.Open(seg.path)
	if err != nil {
		return fmt.Errorf("open raft log segment %s: %w", seg.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat raft log segment %s: %w", seg.path, err)
	}
	size := fi.Size()
	rr := newRecordReader(f, size)
	for first := true; ; first = false {
		start := rr.off
		typ, payload, err := rr.next()
		if err == io.EOF {
			seg.size = size
			return nil
		}
		if err == nil {
			err = applyRecord(st, seg, typ, payload, first)
		}
		if err == nil {
			continue
		}
		if last && start > 0 && isBadRecord(err) {
			return l.truncateTail(seg, start, size, err)
		}
		if isBadRecord(err) {
			return fmt.Errorf("%w: segment %s at offset %d (not the last segment, so not repairable): %v",
				ErrCorrupt, seg.path, start, err)
		}
		return fmt.Errorf("replay raft log segment %s at offset %d: %w", seg.path, start, err)
	}
}

func (l *Log) truncateTail(seg *segment, at, size int64, reason error) error {
	l.logger.Warn("raft log: truncating torn or corrupt tail",
		"file", seg.path, "offset", at, "dropped_bytes", size-at, "reason", reason)
	l.repair = Repair{Dropped: size - at, Corrupt: !isTorn(reason), Reason: reason.Error()}
	f, err := os.OpenFile(seg.path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open raft log segment %s for repair: %w", seg.path, err)
	}
	defer f.Close()
	if err := f.Truncate(at); err != nil {
		return fmt.Errorf("truncate raft log segment %s at %d: %w", seg.path, at, err)
	}
	if err := fsync(f); err != nil {
		return fmt.Errorf("sync repaired raft log segment %s: %w", seg.path, err)
	}
	seg.size = at
	return nil
}

// maxIndex is far beyond any real Raft index; anything at or above it is corruption.
const maxIndex = 1 << 62

// applyRecord replays one record. Undecodable payloads are bad records (repairable at the tail); a
// well-formed record that contradicts the log (a gap) is returned as a plain error, because no torn
// write can produce it and truncating would hide a bug.
func applyRecord(st *memState, seg *segment, typ byte, payload []byte, first bool) error {
	if first != (typ == recSegmentHeader) {
		if first {
			return badRecord("segment does not start with a header (type %d)", typ)
		}
		return badRecord("segment header in the middle of a segment")
	}
	switch typ {
	case recSegmentHeader:
		h, err := decodeHeader(payload)
		if err != nil {
			return err
		}
		if h.prevIndex >= maxIndex {
			// CRC-valid but impossible: index arithmetic (last+1) must never overflow.
			return fmt.Errorf("segment header prevIndex %d is implausible", h.prevIndex)
		}
		if t, ok := st.term(h.prevIndex); ok && t == h.prevTerm {
			st.truncateAfter(h.prevIndex)
		} else {
			st.reset(h.prevIndex, h.prevTerm)
		}
		st.hs, st.snap = h.hs, h.snap
		seg.prevIndex, seg.prevTerm = h.prevIndex, h.prevTerm
	case recEntry:
		e := new(raftpb.Entry)
		if err := proto.Unmarshal(payload, e); err != nil {
			return badRecord("entry: %v", err)
		}
		i := e.GetIndex()
		switch {
		case i <= st.floor():
			// Stale rewrite of a committed entry; Save would have ignored it too.
		case i <= seg.prevIndex:
			return fmt.Errorf("entry %d at or below its segment's prevIndex %d", i, seg.prevIndex)
		case i > st.lastIndex()+1:
			return fmt.Errorf("gap in raft log: entry %d follows last index %d", i, st.lastIndex())
		case i == st.lastIndex()+1:
			st.ents = append(st.ents, e)
		default:
			// Nothing outside the log has seen these slices yet, so truncate in place.
			st.ents = append(st.ents[:i-st.offset()], e)
		}
	case recHardState:
		var hs raftpb.HardState
		if err := proto.Unmarshal(payload, &hs); err != nil {
			return badRecord("hard state: %v", err)
		}
		st.hs = hardStateOf(&hs)
	case recSnapshot:
		var md raftpb.SnapshotMetadata
		if err := proto.Unmarshal(payload, &md); err != nil {
			return badRecord("snapshot: %v", err)
		}
		st.snap = snapMetaOf(&md)
	default:
		return errors.New("unreachable: unknown record type") // rejected by recordReader
	}
	return nil
}
