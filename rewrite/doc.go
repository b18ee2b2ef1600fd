// Package rewrite owns making SQL deterministic before it enters the Raft log: random(), randomblob(N),
// 'now' and the CURRENT_* keywords become literals, while every other byte of the statement is kept.
package rewrite
