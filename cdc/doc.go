// Package cdc delivers change data capture: the row changes every voter's database captures while it
// applies committed entries (db's capture, stored in the database's own queue table in the same
// transaction) go, from the leader only, in index order and in batches, to a webhook or stdout in rqlite's
// JSON format, with retries; the leader tells the voters how far delivery got (the high watermark) so
// they prune their queues. Delivery is at least once: a new leader resumes from the high watermark it
// knows, so a consumer may see an entry twice around a leader change, and drops repeats by index.
package cdc
