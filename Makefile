# SQLite features compiled in (go-sqlite3 build tags): column origins for ?qualify_columns, FTS5 full-text
# search, the math functions, and the pre-update hook that change data capture needs. Plain `go build`
# works too, without them (and without -cdc-config).
TAGS := sqlite_column_metadata sqlite_fts5 sqlite_math_functions sqlite_preupdate_hook
GOFLAGS_TAGS := -tags "$(TAGS)"

# Where scripts/test-deps.sh unpacks what the tests need for a user who is not root (see its comment).
RAFTLITE_TOOLS ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/raftlite/tools
export RAFTLITE_TOOLS

.PHONY: run shell build raftlited test test-deps race vet fuzz bench clean chaos tags

# Builds ./raftlited (from go's build cache, a second or so, once the first build has compiled SQLite), then
# runs it: flags in ARGS go before the data directory, DATA (default ./data).
#   make run ARGS='-node-id 2 -http-addr localhost:4003 -raft-addr localhost:4004 -join localhost:4001' DATA=data2
run: raftlited
	./raftlited $(strip $(ARGS) "$(or $(DATA),data)")

raftlited:
	@TAGS="$(TAGS)" scripts/build.sh -o raftlited ./cmd/raftlited

build: raftlited
	@TAGS="$(TAGS)" scripts/build.sh -o raftlite-bench ./cmd/raftlite-bench
	go build -o raftlite ./cmd/raftlite

# The shell, connected to the node `make run` starts (or any: make shell ARGS="-H host -p port").
shell:
	go run ./cmd/raftlite $(ARGS)

# -count=1: system_test runs binaries it builds itself, which go test's cache cannot see; a cached result
# could be replayed after a change to the server.
# test-deps installs what the tests need besides Go (Chromium, the sqlite3 shell), as root or not.
test: test-deps
	go vet $(GOFLAGS_TAGS) ./...
	PATH="$(RAFTLITE_TOOLS)/bin:$$PATH" go test $(GOFLAGS_TAGS) -count=1 ./...

test-deps:
	@scripts/test-deps.sh

race:
	go test $(GOFLAGS_TAGS) -race ./db/ ./raftlog/ ./transport/ ./raftnode/ ./fsm/ ./cluster/ ./nodecall/ ./cdc/ ./backup/ ./disco/ ./store/ ./api/ ./auth/ ./tlsconfig/ ./shell/

bench: build
	./raftlite-bench -raftlited ./raftlited

# Build outputs only: never ./data or any other data directory (system_test/make_test.go checks).
clean:
	rm -f raftlited raftlite raftlite-bench

# The long fault-injection runs (10 minutes per cluster size): run before closing work on the core.
chaos:
	go test $(GOFLAGS_TAGS) -run TestChaos -timeout 2h -v ./system_test/ -args -chaos=$(or $(CHAOS),10m)

# The build tags, for go commands run by hand: go test -tags "$$(make -s tags)" -count=1 ./...
tags:
	@echo $(TAGS)
