#!/usr/bin/env bash
# Installs what `make test` needs besides Go, so that the suite runs on a fresh Debian machine, as root or
# as any other user:
#   - gcc, for cgo (go-sqlite3);
#   - the sqlite3 shell, which opens a backup in one test;
#   - headless Chromium (Debian's chromium package), which drives the web console in another;
#   - etcd (Debian's etcd-server package), which the etcd discovery tests start;
#   - unshare and user namespaces, in which the disk-full test mounts its small tmpfs filesystems;
#   - the storage servers the backup tests run against, built from the Go module proxy into
#     $RAFTLITE_TOOLS/bin (as any user): versitygw (an S3 gateway that checks request signatures) and
#     fake-gcs-server (Google Cloud Storage's JSON API).
#
# As root it uses apt-get install. Any other user needs no root and no sudo: apt-get, with state and cache
# directories of that user's own, downloads the packages and the dependencies the machine lacks, and
# dpkg -x unpacks them under $RAFTLITE_TOOLS (~/.cache/raftlite/tools), whose bin/ then holds small
# wrappers that run them with their libraries (the Makefile puts that bin/ first on PATH for the tests).
# Whatever is already there is not fetched again: a second run takes a fraction of a second.
set -euo pipefail

tools=${RAFTLITE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/raftlite/tools}
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$tools/bin/$1" ]; }
fail() {
	echo "test-deps: $*" >&2
	exit 1
}

command -v gcc >/dev/null 2>&1 || need_gcc=1
need=()
have sqlite3 || need+=(sqlite3)
have chromium || have chromium-browser || have google-chrome || need+=(chromium)
have etcd || need+=(etcd-server)

if [ "$(id -u)" = 0 ]; then
	[ -n "${need_gcc:-}" ] && need+=(gcc)
	if [ ${#need[@]} -gt 0 ]; then
		echo "test-deps: installing ${need[*]} with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		out=$(apt-get update -qq 2>&1) || fail "apt-get update failed: $out"
		out=$(apt-get install -y -qq --no-install-recommends "${need[@]}" 2>&1) || fail "apt-get install ${need[*]} failed: $out"
	fi
elif [ ${#need[@]} -gt 0 ]; then
	[ -n "${need_gcc:-}" ] && fail "gcc is missing, and a user other than root cannot install it: as root, run apt-get install gcc"
	command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 ||
		fail "${need[*]} missing, and without apt-get and dpkg this script cannot fetch them: install them, then run make test again"
	echo "test-deps: fetching ${need[*]} and the libraries they need into $tools (no root needed; once)"
	mkdir -p "$tools/apt/state/lists/partial" "$tools/apt/cache/archives/partial" "$tools/bin"
	apt=(apt-get -q -o "Dir::State=$tools/apt/state" -o "Dir::Cache=$tools/apt/cache"
		-o Dir::State::status=/var/lib/dpkg/status -o Debug::NoLocking=1)
	"${apt[@]}" -qq update || fail "apt-get update (as $(id -un), into $tools/apt) failed; see above"
	# What apt would install on this machine: the packages and those of their dependencies that are not
	# installed already. An upgrade of an installed package ("Inst pkg [old] (new ...)") is left out: the
	# installed version serves, and a newer libc unpacked beside the system's loader would not.
	plan=$("${apt[@]}" install -s --no-install-recommends "${need[@]}" 2>/dev/null) ||
		fail "apt-get cannot resolve ${need[*]}: $("${apt[@]}" install -s --no-install-recommends "${need[@]}" 2>&1 | tail -3)"
	mapfile -t pkgs < <(awk '$1 == "Inst" && $3 !~ /^\[/ {print $2}' <<<"$plan")
	debs=$tools/apt/debs
	rm -rf "$debs" "$tools/root.new"
	mkdir -p "$debs" "$tools/root.new"
	(cd "$debs" && "${apt[@]}" -qq download "${pkgs[@]}") || fail "apt-get download failed; see above"
	cp -a "$tools/root/." "$tools/root.new/" 2>/dev/null || true
	for deb in "$debs"/*.deb; do dpkg -x "$deb" "$tools/root.new"; done
	rm -rf "$tools/root" "$debs"
	mv "$tools/root.new" "$tools/root"
	root=$tools/root
	libs=$(find "$root" \( -name '*.so' -o -name '*.so.*' \) -printf '%h\n' | sort -u | paste -sd:)
	libs=${libs:-$root/usr/lib}
	wrap() { # wrap NAME BINARY: $tools/bin/NAME runs BINARY with the unpacked libraries
		[ -x "$root/$2" ] || fail "$2 is not in the unpacked packages"
		cat >"$tools/bin/$1.new" <<-EOF
			#!/bin/sh
			# Made by scripts/test-deps.sh: $1 unpacked from Debian's packages, run with their libraries.
			LD_LIBRARY_PATH="$libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$root/$2" "\$@"
		EOF
		chmod +x "$tools/bin/$1.new"
		mv "$tools/bin/$1.new" "$tools/bin/$1"
	}
	for p in "${need[@]}"; do
		case $p in
		chromium) wrap chromium usr/lib/chromium/chromium ;;
		sqlite3) wrap sqlite3 usr/bin/sqlite3 ;;
		etcd-server) wrap etcd usr/bin/etcd ;;
		esac
	done
	echo "test-deps: ${need[*]} ready in $tools/bin ($(du -sh "$root" | cut -f1) unpacked)"
fi

# Go programs the tests start, pinned, built once into $tools/bin (a stamp file records the version built).
go_tool() { # go_tool NAME MODULE/PATH@VERSION
	local name=$1 pkg=$2 stamp="$tools/bin/.$1@${2##*@}"
	[ -x "$tools/bin/$name" ] && [ -e "$stamp" ] && return 0
	command -v go >/dev/null 2>&1 || fail "go is not on PATH; it is needed to build $name"
	echo "test-deps: building $name (${pkg##*/}) from the Go module proxy into $tools/bin (once; about a minute and a half)"
	mkdir -p "$tools/bin"
	out=$(GOBIN="$tools/bin" GOFLAGS=-buildvcs=false go install "$pkg" 2>&1) || fail "go install $pkg failed: $out"
	rm -f "$tools/bin/.$name@"*
	touch "$stamp"
}
go_tool versitygw github.com/versity/versitygw/cmd/versitygw@v1.8.0
go_tool fake-gcs-server github.com/fsouza/fake-gcs-server@v1.56.1

# The disk-full test mounts tmpfs filesystems in a mount namespace of its own, inside a user namespace.
command -v unshare >/dev/null 2>&1 && command -v nsenter >/dev/null 2>&1 ||
	fail "unshare and nsenter (Debian's util-linux) are missing; the disk-full test needs them"
unshare -Urm true 2>/dev/null ||
	fail "unshare -Urm fails here: the disk-full test needs user namespaces (as root: sysctl -w kernel.unprivileged_userns_clone=1, or run the tests as root in a container that allows them)"
