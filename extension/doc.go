// Package extension owns -extensions-path: it gathers the SQLite extensions the flag names (shared
// libraries, directories of them, zip and tar.gz archives) into the data directory, where every
// connection loads them, and computes their digest, by which nodes tell whether they load the same set.
package extension
