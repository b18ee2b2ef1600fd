#!/usr/bin/env bash
# go build with a word of progress: go build prints nothing while cgo compiles SQLite's C source, which on
# a first build (an empty build cache) takes minutes. A build still running after 2 s says why, if SQLite
# is what it compiles, then "still building" every 30 s until it ends. Other builds come from go's build
# cache, take about a second, and print nothing.
#
# Usage: TAGS="build tags" scripts/build.sh [go build flags] PACKAGE   (as the Makefile calls it)
set -uo pipefail

tags=${TAGS:-}
pkg=${!#}
what=$(basename "$pkg")

go build -tags "$tags" "$@" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid"; exit 130' INT TERM
ticks=0
while kill -0 "$pid" 2>/dev/null; do
	sleep 0.2
	ticks=$((ticks + 1))
	kill -0 "$pid" 2>/dev/null || break
	if ((ticks == 10)); then
		# go-sqlite3 is stale (not in the build cache yet) on a first build, or after a change of tags or Go.
		if [ "$(go list -tags "$tags" -f '{{.Stale}}' github.com/mattn/go-sqlite3 2>/dev/null)" = true ]; then
			echo "building $what: the first build compiles SQLite's C source (go-sqlite3), about 3 minutes on 2 cores; later builds take seconds"
		fi
	elif ((ticks % 150 == 0)); then
		echo "still building $what ($((ticks / 5)) s)..."
	fi
done
wait "$pid"
