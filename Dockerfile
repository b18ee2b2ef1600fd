# raftlite's container image: raftlited and the raftlite shell on Debian slim, run as a non-root user,
# the data in a volume, /readyz as the health check. docs/deployment.md explains how to run it.
#
#   docker build -t raftlite .
#   docker run -p 4001:4001 -v raftlite-data:/raftlite/file raftlite

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The SQLite features of make build (see the Makefile's TAGS); go-sqlite3 needs cgo, hence glibc below.
RUN go build -trimpath -ldflags "-s -w" \
      -tags "sqlite_column_metadata sqlite_fts5 sqlite_math_functions sqlite_preupdate_hook" \
      -o /out/raftlited ./cmd/raftlited \
 && go build -trimpath -ldflags "-s -w" -o /out/raftlite ./cmd/raftlite

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 raftlite \
 && useradd --system --uid 10001 --gid raftlite --home-dir /raftlite --shell /usr/sbin/nologin raftlite \
 && mkdir -p /raftlite/file \
 && chown raftlite:raftlite /raftlite/file
COPY --from=build /out/raftlited /out/raftlite /usr/local/bin/
COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER raftlite
VOLUME /raftlite/file
EXPOSE 4001 4002
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s \
  CMD curl -fsS "http://127.0.0.1:${HTTP_ADDR##*:}/readyz" >/dev/null || exit 1
ENV HTTP_ADDR=0.0.0.0:4001 RAFT_ADDR=0.0.0.0:4002 DATA_DIR=/raftlite/file/data
ENTRYPOINT ["docker-entrypoint.sh"]
