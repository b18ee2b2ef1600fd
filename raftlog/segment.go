package raftlog

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const segExt = ".seg"

// segment is one file of the log. prevIndex/prevTerm come from its header; size is the number of valid
// bytes (for the active segment, where the next append lands).
type segment struct {
	seq       uint64
	prevIndex uint64
	prevTerm  uint64
	path      string
	size      int64
}

func segmentName(seq, firstIndex uint64) string {
	return fmt.Sprintf("%016x-%016x%s", seq, firstIndex, segExt)
}

func parseSegmentName(name string) (seq, firstIndex uint64, ok bool) {
	base, found := strings.CutSuffix(name, segExt)
	if !found || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(base[:16], 16, 64)
	firstIndex, err2 := strconv.ParseUint(base[17:], 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return seq, firstIndex, true
}

// listSegments returns the segment files in dir in seq order.
func listSegments(dir string) ([]*segment, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list raft log dir %s: %w", dir, err)
	}
	var segs []*segment
	for _, de := range des {
		if !de.Type().IsRegular() || !strings.HasSuffix(de.Name(), segExt) {
			continue
		}
		seq, _, ok := parseSegmentName(de.Name())
		if !ok {
			return nil, fmt.Errorf("raft log dir %s: unexpected segment file name %q", dir, de.Name())
		}
		segs = append(segs, &segment{seq: seq, path: filepath.Join(dir, de.Name())})
	}
	slices.SortFunc(segs, func(a, b *segment) int { return cmp.Compare(a.seq, b.seq) })
	for i := 1; i < len(segs); i++ {
		if segs[i].seq == segs[i-1].seq {
			return nil, fmt.Errorf("raft log dir %s: two segments with seq %d: %s and %s",
				dir, segs[i].seq, segs[i-1].path, segs[i].path)
		}
	}
	return segs, nil
}

// createSegment makes a new segment holding only its header and makes both the file and its directory
// entry durable before returning, so a segment either exists with a valid header or is a torn creation
// that Open removes.
func createSegment(dir string, dirf *os.File, seq uint64, h segHeader) (*segment, *os.File, error) {
	path := filepath.Join(dir, segmentName(seq, h.prevIndex+1))
	buf, err := appendHeaderRecord(nil, h)
	if err != nil {
		return nil, nil, fmt.Errorf("encode raft log segment header %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		if isNoSpace(err) {
			return nil, nil, fmt.Errorf("%w: create raft log segment %s: %v", ErrNoSpace, path, err)
		}
		return nil, nil, fmt.Errorf("create raft log segment %s: %w", path, err)
	}
	fail := func(op string, err error) (*segment, *os.File, error) {
		f.Close()
		os.Remove(path) // best effort: a leftover torn file is removed by the next Open anyway
		return nil, nil, fmt.Errorf("%s raft log segment %s: %w", op, path, err)
	}
	if _, err := f.Write(buf); err != nil {
		if isNoSpace(err) {
			err = fmt.Errorf("%w: %v", ErrNoSpace, err)
		}
		return fail("write header of", err)
	}
	if err := fsync(f); err != nil {
		return fail("sync", err)
	}
	if err := fsync(dirf); err != nil {
		return fail("sync directory for", err)
	}
	seg := &segment{seq: seq, prevIndex: h.prevIndex, prevTerm: h.prevTerm, path: path, size: int64(len(buf))}
	return seg, f, nil
}

func openForAppend(seg *segment) (*os.File, error) {
	f, err := os.OpenFile(seg.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("open raft log segment %s: %w", seg.path, err)
	}
	return f, nil
}

// fsync is a variable only so the exhaustive torn/corrupt-tail tests, which check parsing rather than
// power-loss durability, can skip thousands of device flushes.
var fsync = (*os.File).Sync
