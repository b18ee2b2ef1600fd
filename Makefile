# SQLite features compiled in (go-sqlite3 build tags): column origins for ?qualify_columns, FTS5 full-text
# search, and the math functions. Plain `go build` works too, without them.
TAGS := sqlite_column_metadata sqlite_fts5 sqlite_math_functions
GOFLAGS_TAGS := -tags "$(TAGS)"

.PHONY: run shell build test race vet fuzz bench clean chaos

run:
	go run $(GOFLAGS_TAGS) ./cmd/raftlited $(or $(DATA),data)

build:
	go build $(GOFLAGS_TAGS) -o raftlited ./cmd/raftlited
	go build $(GOFLAGS_TAGS) -o raftlite-bench ./cmd/raftlite-bench
	go build -o raftlite ./cmd/raftlite

# The shell, connected to the node `make run` starts (or any: make shell ARGS="-H host -p port").
shell:
	go run ./cmd/raftlite $(ARGS)

# -count=1: system_test runs binaries it builds itself, which go test's cache cannot see; a cached result
# could be replayed after a change to the server.
test:
	go vet $(GOFLAGS_TAGS) ./...
	go test $(GOFLAGS_TAGS) -count=1 ./...

race:
	go test $(GOFLAGS_TAGS) -race ./db/ ./raftlog/ ./transport/ ./raftnode/ ./fsm/ ./cluster/ ./nodecall/ ./store/ ./api/ ./auth/ ./tlsconfig/ ./shell/

bench: build
	./raftlite-bench -raftlited ./raftlited

clean:
	rm -rf raftlited raftlite raftlite-bench data

# The long fault-injection runs (10 minutes per cluster size): run before closing work on the core.
chaos:
	go test $(GOFLAGS_TAGS) -run TestChaos -timeout 2h -v ./system_test/ -args -chaos=$(or $(CHAOS),10m)
