// Package db owns one node's SQLite database file: opening it in WAL mode, applying committed requests in
// batches on the single writer connection (with the applied index in the same transaction), serving reads
// from a pool of read-only connections, and making and installing consistent copies of the file.
//
// The writer connection is deterministic: its clock is the command's timestamp (a wrapper VFS) and its
// random() and randomblob() draw from a generator seeded by the command, so every replica computes the same
// database from the same log, even for defaults, triggers and statements that were not rewritten.
package db
