// Package command defines raftlite's wire formats: the commands replicated through the Raft log and the
// internal calls between nodes (protobuf, generated from command.proto), plus the plain Go result types
// that the database layer produces and the HTTP layer encodes.
package command

//go:generate protoc --go_out=. --go_opt=paths=source_relative command.proto
