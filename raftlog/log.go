package raftlog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const defaultSegmentSize = 64 << 20

// maxKeptBuf caps the encode buffer kept between Saves, so one huge batch does not pin its memory forever.
const maxKeptBuf = 4 << 20

// ErrClosed is returned by mutating methods after Close.
var ErrClosed = errors.New("raft log is closed")

// Options configures Open.
type Options struct {
	// SegmentSize: start a new segment file once the active one reaches this many bytes. 0 = 64 MiB.
	SegmentSize int64
	// Logger for warnings (repairs). nil = slog.Default().
	Logger *slog.Logger
}

// Log is the durable Raft log of one node. All methods are safe for concurrent use.
type Log struct {
	mu      sync.Mutex
	dir     string
	dirf    *os.File // held open for directory fsyncs and the flock
	segSize int64
	logger  *slog.Logger

	st   memState
	segs []*segment // seq order; the last one is active
	f    *os.File   // active segment, opened O_APPEND
	buf  []byte     // reused encode buffer

	unsynced bool // bytes written to f since its last fsync
	// failed is sticky: after a failed write or fsync the file and page cache are in an unknown state
	// (and Linux may have dropped the dirty pages), so only a reopen, which re-reads the disk, is safe.
	failed error
	closed bool
	repair Repair

	// stats is republished after every change, so that Stats never waits for an fsync under mu. Each
	// figure is its own atomic (a pointer to a fresh Stats would cost Save an allocation).
	stats struct {
		first, last, snapIndex, snapTerm atomic.Uint64
		segments, bytes                  atomic.Int64
	}
}

// Repair describes what Open cut from the tail of the log.
type Repair struct {
	Dropped int64  // bytes removed; 0 if the log was whole
	Corrupt bool   // a whole record was wrong (not merely torn): acknowledged data may have been lost
	Reason  string // what was wrong
}

// Repaired reports what Open cut from the tail of the log.
func (l *Log) Repaired() Repair {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.repair
}

var _ raft.Storage = (*Log)(nil)

// Open opens the log in dir (creating dir, mode 0700, if missing), replays every segment, repairs a torn or
// corrupt tail of the LAST segment by truncating it at the first bad record (logging a warning with the file,
// offset and number of bytes dropped), and returns the log ready for appends. A bad record in any segment
// other than the last is an error (a clear one naming file and offset), not a silent repair.
func Open(dir string, opts Options) (*Log, error) {
	if opts.SegmentSize < 0 {
		return nil, fmt.Errorf("open raft log %s: negative SegmentSize %d", dir, opts.SegmentSize)
	}
	l := &Log{dir: dir, segSize: opts.SegmentSize, logger: opts.Logger, st: newMemState()}
	if l.segSize == 0 {
		l.segSize = defaultSegmentSize
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft log dir %s: %w", dir, err)
	}
	dirf, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open raft log dir %s: %w", dir, err)
	}
	l.dirf = dirf
	if err := l.load(); err != nil {
		dirf.Close() // also releases the flock
		return nil, err
	}
	l.publishStats()
	return l, nil
}

func (l *Log) load() error {
	if err := lockDir(l.dirf); err != nil {
		return err
	}
	segs, err := listSegments(l.dir)
	if err != nil {
		return err
	}
	if segs, err = l.dropTornLastSegments(segs); err != nil {
		return err
	}
	if len(segs) == 0 {
		seg, f, err := createSegment(l.dir, l.dirf, 1, segHeader{})
		if err != nil {
			return err
		}
		l.segs, l.f = []*segment{seg}, f
		return nil
	}
	for i, seg := range segs {
		if err := l.replaySegment(seg, &l.st, i == len(segs)-1); err != nil {
			return err
		}
	}
	l.segs = segs
	if err := l.checkReplayed(); err != nil {
		return err
	}
	f, err := openForAppend(segs[len(segs)-1])
	if err != nil {
		return err
	}
	l.f = f
	return nil
}

// checkReplayed enforces what raft assumes of its storage after a restart.
func (l *Log) checkReplayed() error {
	st := &l.st
	if last := st.lastIndex(); st.snap.index > last {
		return fmt.Errorf("raft log %s: snapshot index %d is beyond last index %d", l.dir, st.snap.index, last)
	}
	if last := st.lastIndex(); st.hs.commit > last {
		// Raft panics on a commit index it has no entry for; the entries past last are gone, so the
		// best we can say is that everything we hold may be committed.
		l.logger.Warn("raft log: hard state commit beyond last index; clamping",
			"dir", l.dir, "commit", st.hs.commit, "last_index", last)
		st.hs.commit = last
	}
	st.hs.commit = max(st.hs.commit, st.snap.index)
	return nil
}

func (l *Log) writable() error {
	if l.closed {
		return ErrClosed
	}
	return l.failed
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// Save appends ents and then hs in ONE write(2) call (entries records first, then the HardState record).
// An entry with index i discards every held entry with index >= i first (Raft log truncation on conflict).
// hs == nil or raft.IsEmptyHardState(hs) means "no HardState change". Entries at or below the snapshot
// index are ignored (as MemoryStorage.Append does). A gap (first new index > LastIndex()+1) is an error.
// If sync, fsync the file before returning. After a failed write or fsync, every later write returns that
// error: the node should stop and reopen the log.
func (l *Log) Save(hs *raftpb.HardState, ents []*raftpb.Entry, sync bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.publishStats()
	if err := l.writable(); err != nil {
		return err
	}
	if len(ents) > 0 {
		first := ents[0].GetIndex()
		for k, e := range ents {
			if e.GetIndex() != first+uint64(k) {
				return fmt.Errorf("save to raft log %s: entries not contiguous: index %d at position %d after %d",
					l.dir, e.GetIndex(), k, first)
			}
		}
		floor := l.st.floor()
		switch last := first + uint64(len(ents)) - 1; {
		case last <= floor:
			ents = nil
		case first <= floor:
			ents = ents[floor+1-first:]
		}
		if len(ents) > 0 && ents[0].GetIndex() > l.st.lastIndex()+1 {
			return fmt.Errorf("save to raft log %s: gap: first new index %d, last index %d",
				l.dir, ents[0].GetIndex(), l.st.lastIndex())
		}
	}
	hasHS := !raft.IsEmptyHardState(hs)
	if len(ents) == 0 && !hasHS {
		if sync {
			return l.syncActive()
		}
		return nil
	}

	// prev is the entry just before what this Save writes; cutting there keeps "entries in a segment are
	// above its prevIndex" true even when this batch rewrites part of the log.
	prev := l.st.lastIndex()
	if len(ents) > 0 {
		prev = min(prev, ents[0].GetIndex()-1)
	}
	if prev < l.active().prevIndex || l.active().size >= l.segSize {
		term, _ := l.st.term(prev) // prev >= floor >= offset, so it is held
		if err := l.cut(segHeader{prevIndex: prev, prevTerm: term, hs: l.st.hs, snap: l.st.snap}); err != nil {
			return err
		}
	}

	buf := l.buf[:0]
	var err error
	for _, e := range ents {
		if buf, err = appendProtoRecord(buf, recEntry, e); err != nil {
			return fmt.Errorf("encode entry %d for raft log %s: %w", e.GetIndex(), l.dir, err)
		}
	}
	if hasHS {
		if buf, err = appendProtoRecord(buf, recHardState, hs); err != nil {
			return fmt.Errorf("encode hard state for raft log %s: %w", l.dir, err)
		}
	}
	if cap(buf) <= maxKeptBuf {
		l.buf = buf[:0]
	} else {
		l.buf = nil
	}
	if err := l.write(buf); err != nil {
		return err
	}
	if sync {
		if err := l.syncActive(); err != nil {
			return err
		}
	}
	l.st.appendEntries(ents)
	if hasHS {
		l.st.hs = hardStateOf(hs)
	}
	return nil
}

// ErrNoSpace reports a write the disk refused for lack of space. Nothing of it remains in the log, and the
// same call may be made again once there is room.
var ErrNoSpace = errors.New("no space left on device for the raft log")

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// write appends buf to the active segment with a single write call.
func (l *Log) write(buf []byte) error {
	seg := l.active()
	n, err := l.f.Write(buf)
	if err != nil {
		// Leave no partial record behind (Open would cut it off anyway).
		truncated := n == 0 || l.f.Truncate(seg.size) == nil
		if truncated && isNoSpace(err) {
			// The kernel accepted nothing that stays: the log is exactly as before, so this is not sticky.
			return fmt.Errorf("%w: write raft log segment %s: %v", ErrNoSpace, seg.path, err)
		}
		l.failed = fmt.Errorf("write raft log segment %s: %w", seg.path, err)
		return l.failed
	}
	seg.size += int64(n)
	l.unsynced = true
	return nil
}

func (l *Log) syncActive() error {
	if !l.unsynced {
		return nil
	}
	if err := fsync(l.f); err != nil {
		l.failed = fmt.Errorf("sync raft log segment %s: %w", l.active().path, err)
		return l.failed
	}
	l.unsynced = false
	return nil
}

// cut starts a new active segment with header h. The old segment is fsynced first: only the last
// segment may ever be repaired, so every earlier one must be complete on disk.
func (l *Log) cut(h segHeader) error {
	if err := l.syncActive(); err != nil {
		return err
	}
	seg, f, err := createSegment(l.dir, l.dirf, l.active().seq+1, h)
	if err != nil {
		if errors.Is(err, ErrNoSpace) {
			return err // the new file was removed again; the log is as before
		}
		l.failed = err
		return err
	}
	if err := l.f.Close(); err != nil {
		l.logger.Warn("raft log: closing previous segment", "file", l.active().path, "err", err)
	}
	l.segs = append(l.segs, seg)
	l.f = f
	return nil
}

// CreateSnapshot records (durably: fsync before return) that the state machine holds everything up to and
// including index, with conf state cs (nil keeps the previous one). index must be within
// [FirstIndex()-1, LastIndex()]; raft.ErrSnapOutOfDate if index <= current snapshot index. Does NOT drop
// entries (like MemoryStorage.CreateSnapshot).
func (l *Log) CreateSnapshot(index uint64, cs *raftpb.ConfState) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.publishStats()
	if err := l.writable(); err != nil {
		return err
	}
	if index <= l.st.snap.index {
		return raft.ErrSnapOutOfDate
	}
	term, ok := l.st.term(index)
	if !ok {
		return fmt.Errorf("create snapshot in raft log %s: index %d outside [%d, %d]",
			l.dir, index, l.st.offset(), l.st.lastIndex())
	}
	snap := snapMeta{index: index, term: term, cs: l.st.snap.cs}
	if cs != nil {
		snap.cs = proto.Clone(cs).(*raftpb.ConfState)
	}
	buf, err := appendProtoRecord(nil, recSnapshot, snap.proto())
	if err != nil {
		return fmt.Errorf("encode snapshot record for raft log %s: %w", l.dir, err)
	}
	if err := l.write(buf); err != nil {
		return err
	}
	if err := l.syncActive(); err != nil {
		return err
	}
	l.st.snap = snap
	return nil
}

// Compact discards entries before compactIndex from memory exactly like MemoryStorage.Compact (entry
// compactIndex becomes the dummy: FirstIndex() = compactIndex+1, Term(compactIndex) still works) and
// deletes the segment files no longer needed to rebuild the log from compactIndex-1 on. It returns
// raft.ErrCompacted if compactIndex <= FirstIndex()-1, and an error if compactIndex is above the snapshot
// index: raft may still need to apply entries past the snapshot, and MemoryStorage semantics would make
// entry compactIndex itself unreadable.
func (l *Log) Compact(compactIndex uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.publishStats()
	if err := l.writable(); err != nil {
		return err
	}
	if compactIndex <= l.st.offset() {
		return raft.ErrCompacted
	}
	if compactIndex > l.st.snap.index {
		return fmt.Errorf("compact raft log %s to %d: beyond snapshot index %d", l.dir, compactIndex, l.st.snap.index)
	}
	if compactIndex > l.st.lastIndex() {
		return fmt.Errorf("compact raft log %s to %d: beyond last index %d", l.dir, compactIndex, l.st.lastIndex())
	}
	l.st.compact(compactIndex)

	// Any suffix of segments rebuilds the log from its first header's prevIndex on, so keep the suffix
	// starting at the last segment whose prevIndex+1 <= compactIndex. The active segment is never removed.
	keep := 0
	for i, seg := range l.segs {
		if seg.prevIndex+1 <= compactIndex {
			keep = i
		}
	}
	if keep == 0 {
		return nil
	}
	removed := 0
	var err error
	for _, seg := range l.segs[:keep] {
		if err = os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("remove compacted raft log segment %s: %w", seg.path, err)
			break
		}
		err = nil
		removed++
	}
	l.segs = append(l.segs[:0:0], l.segs[removed:]...)
	if removed > 0 {
		if serr := fsync(l.dirf); serr != nil && err == nil {
			err = fmt.Errorf("sync raft log dir %s: %w", l.dir, serr)
		}
	}
	return err
}

// ApplySnapshot replaces the contents with the snapshot (a follower installing a leader's snapshot): every
// entry is discarded, FirstIndex()-1 becomes the snapshot index with the snapshot's term, the snapshot
// metadata (index, term, ConfState) is recorded, and HardState.Commit is raised to at least the snapshot
// index. Durable (fsynced) on return. Returns raft.ErrSnapOutOfDate if older than the current snapshot.
func (l *Log) ApplySnapshot(snap *raftpb.Snapshot) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.publishStats()
	if err := l.writable(); err != nil {
		return err
	}
	md := snap.GetMetadata()
	// Same rule as MemoryStorage: an index-0 snapshot carrying only a ConfState is accepted at bootstrap.
	if cur := l.st.snap.index; cur != 0 && cur >= md.GetIndex() {
		return raft.ErrSnapOutOfDate
	}
	newSnap := snapMetaOf(md)
	hs := l.st.hs
	hs.commit = max(hs.commit, newSnap.index)
	// The new segment's header alone records the installed snapshot: replay resets the log to
	// (index, term) unless the held entries already agree there, so no separate snapshot record is needed.
	if err := l.cut(segHeader{prevIndex: newSnap.index, prevTerm: newSnap.term, hs: hs, snap: newSnap}); err != nil {
		return err
	}
	l.st.reset(newSnap.index, newSnap.term)
	l.st.hs = hs
	l.st.snap = newSnap
	return nil
}

// Stats for the node's /status page.
type Stats struct {
	FirstIndex, LastIndex, SnapshotIndex, SnapshotTerm uint64
	Segments                                           int
	Bytes                                              int64
}

// Stats returns the figures as of the last change, without waiting for a write in progress. The figures
// are read one by one: during a change, some may already be new.
func (l *Log) Stats() Stats {
	return Stats{
		FirstIndex: l.stats.first.Load(), LastIndex: l.stats.last.Load(),
		SnapshotIndex: l.stats.snapIndex.Load(), SnapshotTerm: l.stats.snapTerm.Load(),
		Segments: int(l.stats.segments.Load()), Bytes: l.stats.bytes.Load(),
	}
}

// publishStats records the current figures for Stats (with mu held).
func (l *Log) publishStats() {
	var size int64
	for _, seg := range l.segs {
		size += seg.size
	}
	l.stats.first.Store(l.st.offset() + 1)
	l.stats.last.Store(l.st.lastIndex())
	l.stats.snapIndex.Store(l.st.snap.index)
	l.stats.snapTerm.Store(l.st.snap.term)
	l.stats.segments.Store(int64(len(l.segs)))
	l.stats.bytes.Store(size)
}

// Close fsyncs anything written with sync=false and releases the directory. Storage reads keep working
// on the in-memory copy; writes return ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	if l.failed == nil && l.unsynced {
		if err := fsync(l.f); err != nil {
			errs = append(errs, fmt.Errorf("sync raft log segment %s: %w", l.active().path, err))
		}
	}
	if err := l.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close raft log segment %s: %w", l.active().path, err))
	}
	if err := l.dirf.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close raft log dir %s: %w", l.dir, err))
	}
	return errors.Join(errs...)
}
