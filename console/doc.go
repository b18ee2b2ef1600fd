// Package console is the web console every node serves at /console/: the cluster at a glance (nodes,
// roles, reachability, Raft indexes and lag, updated every second), a SQL console at a chosen consistency
// level, and the schema. It is plain HTML and JavaScript embedded in the binary; there is no build step.
// The pages call the node's own HTTP API, so they see exactly what a client sees, with the same
// credentials.
package console
