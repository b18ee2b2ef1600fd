module github.com/raftlite/raftlite

go 1.26.8

require (
	github.com/mattn/go-sqlite3 v1.14.52
	go.etcd.io/raft/v3 v3.7.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/anishathalye/porcupine v1.3.1 // indirect
	github.com/rqlite/gorqlite v0.0.0-20260504155303-50d445fd0ab9 // indirect
)
