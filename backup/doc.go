// Package backup owns automatic backups to object storage and a directory (-auto-backup), and the
// automatic restore of a new node from them (-auto-restore): the two JSON configuration files, the
// storage clients (S3 and S3-compatible stores, Google Cloud Storage, a local directory), the upload loop
// that runs on the leader, the download that runs before a node serves, and their counters.
//
// The node itself is reached through Source (what the uploader needs of it); this package knows nothing
// of SQLite beyond the first bytes of its file format.
package backup
