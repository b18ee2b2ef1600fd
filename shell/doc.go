// Package shell is raftlite's command-line client: it reads SQL statements and dot-commands (from a
// terminal with line editing, from a script, or from one argument), sends them to a node over the
// rqlite-compatible HTTP API, and prints the results as tables, CSV, JSON or lines. It follows the cluster:
// when the node it talks to goes away it fails over to another member.
package shell
