#!/usr/bin/env bash
# go build with a word of progress: go build prints nothing while cgo compiles SQLite's C source, which on
# a first build (an empty build cache) takes minutes. Says so before it starts, then "still building" every
# 30 s until it ends. Later builds come from go's build cache and take about a second.
#
# Usage: TAGS="build tags" scripts/build.sh [go build flags] PACKAGE   (as the Makefile calls it)
set -uo pipefail

tags=${TAGS:-}
pkg=${!#}
what=$(basename "$pkg")
# go-sqlite3 is stale (not in the build cache) on a first build, or after a change of tags or of Go.
stale=$(go list -tags "$tags" -deps -f '{{if .Stale}}{{.ImportPath}}{{end}}' "$pkg" 2>/dev/null)
if grep -qx 'github.com/mattn/go-sqlite3' <<<"$stale"; then
	echo "building $what: the first build compiles SQLite's C source (go-sqlite3), about 3 minutes on 2 cores; later builds take seconds"
fi

go build -tags "$tags" "$@" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid"; exit 130' INT TERM
ticks=0
while kill -0 "$pid" 2>/dev/null; do
	sleep 0.2
	ticks=$((ticks + 1))
	if ((ticks % 150 == 0)) && kill -0 "$pid" 2>/dev/null; then
		echo "still building $what ($((ticks / 5)) s)..."
	fi
done
wait "$pid"
