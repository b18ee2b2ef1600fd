// Package raftlog owns the durable Raft log of one raftlite node: CRC-framed segment files holding entries,
// HardState and snapshot metadata, and the in-memory copy it serves to etcd raft as a raft.Storage.
package raftlog

// On-disk format
//
// A log is a directory of segment files named "%016x-%016x.seg" (seq, firstIndex): seq increases by one
// per new segment starting at 1, and firstIndex is the index the next entry written to the segment would
// have had when it was created (informational; the header below is authoritative). Nothing else is stored
// in the directory by this package; other files are ignored, but a "*.seg" file with any other name is an
// error rather than being guessed at. The directory itself is flock'ed while a Log has it open.
//
// A segment is a sequence of records:
//
//	[4-byte LE length L][4-byte LE CRC32-Castagnoli of body][body: 1-byte type | payload]   (L = len(body))
//
// Record types and payloads:
//
//	1 entry          proto.Marshal(raftpb.Entry)
//	2 hardState      proto.Marshal(raftpb.HardState)
//	3 snapshot       proto.Marshal(raftpb.SnapshotMetadata) (index, term, ConfState; no data)
//	4 segmentHeader  protobuf wire fields: 1 prevIndex (varint), 2 prevTerm (varint),
//	                 3 HardState (bytes, raftpb.HardState), 4 snapshot (bytes, raftpb.SnapshotMetadata)
//
// Every segment starts with exactly one segmentHeader, which restates the whole non-entry state at the
// moment the segment was cut (the entry before the segment's first entry, the HardState and the snapshot
// metadata). Any suffix of the segment list is therefore enough to rebuild the log, which is what lets
// compaction delete whole files. Entries written to a segment always have index > its prevIndex; replay
// applies records in order with Raft's "a new entry at index i discards everything from i on" rule.
//
// Readers reject a record with L == 0, L > 1 GiB, L beyond the end of the file, a CRC mismatch, an
// unknown type or an undecodable payload. Such a record in the last segment is a torn or corrupt tail
// and is cut off (with everything after it) on Open; anywhere else it is an error.
