#!/bin/sh
# Starts raftlited in a container, as rqlite's image does: the addresses and node-id come from the
# environment (HTTP_ADDR, HTTP_ADV_ADDR, RAFT_ADDR, RAFT_ADV_ADDR, NODE_ID, DATA_DIR), with defaults
# that suit a container; the container's arguments are more flags (-join, -bootstrap-expect,
# -disco-mode, -auth, ...), which override the defaults. The data directory comes last: give DATA_DIR,
# not a path among the arguments.
set -e

RAFTLITED=${RAFTLITED:-raftlited}
host=$(hostname -f 2>/dev/null || hostname)

HTTP_ADDR=${HTTP_ADDR:-0.0.0.0:4001}
RAFT_ADDR=${RAFT_ADDR:-0.0.0.0:4002}
HTTP_ADV_ADDR=${HTTP_ADV_ADDR:-$host:${HTTP_ADDR##*:}}
RAFT_ADV_ADDR=${RAFT_ADV_ADDR:-$host:${RAFT_ADDR##*:}}
NODE_ID=${NODE_ID:-$(hostname)}
DATA_DIR=${DATA_DIR:-/raftlite/file/data}

exec "$RAFTLITED" -node-id "$NODE_ID" \
	-http-addr "$HTTP_ADDR" -http-adv-addr "$HTTP_ADV_ADDR" \
	-raft-addr "$RAFT_ADDR" -raft-adv-addr "$RAFT_ADV_ADDR" \
	"$@" "$DATA_DIR"
