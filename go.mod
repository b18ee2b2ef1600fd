module github.com/raftlite/raftlite

go 1.26.8

require (
	github.com/mattn/go-sqlite3 v1.14.52
	go.etcd.io/raft/v3 v3.7.0
	google.golang.org/protobuf v1.36.12
)
