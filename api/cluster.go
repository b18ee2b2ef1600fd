package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raftlite/raftlite/auth"
	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/store"
)

// handleStatus serves /status: always 200, even before the store runs.
func (s *Service) handleStatus(w http.ResponseWriter, r *http.Request, p *params) {
	status := s.status()
	var out any = status
	if p.key != "" {
		out = subtree(status, p.key)
	}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, p, http.StatusOK, b)
}

// subtree descends a dotted key; a missing key gives {}, a non-object ends the descent.
func subtree(m map[string]any, key string) any {
	var cur any = m
	for _, part := range strings.Split(key, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return cur
		}
		next, ok := obj[part]
		if !ok {
			return map[string]any{}
		}
		cur = next
	}
	return cur
}

func (s *Service) status() map[string]any {
	st := s.store.Status()
	hostname, _ := os.Hostname()
	exe, _ := os.Executable()
	nodes := make([]map[string]any, 0, len(st.Members))
	for _, m := range st.Members {
		suffrage := "nonvoter"
		if m.Voter {
			suffrage = "voter"
		}
		nodes = append(nodes, map[string]any{"id": m.NodeID, "addr": m.RaftAddr, "suffrage": suffrage})
	}
	fk := "disabled"
	if st.ForeignKeys {
		fk = "enabled"
	}
	now := time.Now()
	cdcSection, storeCDC := s.cdcStatus()
	dirSize := treeSize(st.DataDir)
	out := map[string]any{
		"os": map[string]any{"pid": os.Getpid(), "ppid": os.Getppid(), "page_size": os.Getpagesize(),
			"executable": exe, "hostname": hostname},
		"runtime": map[string]any{"GOARCH": runtime.GOARCH, "GOOS": runtime.GOOS, "GOMAXPROCS": runtime.GOMAXPROCS(0),
			"num_cpu": runtime.NumCPU(), "num_goroutine": runtime.NumGoroutine(), "version": runtime.Version(),
			"kubernetes_hint": os.Getenv("KUBERNETES_SERVICE_HOST") != ""},
		"build": buildStatus(s.version),
		"node": map[string]any{"start_time": s.start.UTC().Format(time.RFC3339Nano), "current_time": now.UTC().Format(time.RFC3339Nano),
			"uptime": now.Sub(s.start).String()},
		"cluster":    map[string]any{"addr": st.RaftAddr, "api_addr": st.HTTPURL, "https": strings.HasPrefix(st.HTTPURL, "https://")},
		"extensions": map[string]any{"dir": st.Extensions.Dir, "names": nonNil(st.Extensions.Names)},
		"http": map[string]any{"bind_addr": s.store.HTTPAddr(), "auth": authState(s.auth),
			"queue": map[string]any{"_default": map[string]any{"max_size": s.queue.cfg.Capacity, "batch_size": s.queue.cfg.BatchSize,
				"timeout": s.queue.cfg.Timeout.String(), "sequence_number": s.queue.done.Load()}}},
		"store": map[string]any{
			"open":                   st.Open,
			"ready":                  st.Ready,
			"not_ready":              st.NotReady,
			"fault":                  st.Fault,
			"node_id":                st.NodeID,
			"raft_id":                fmt.Sprintf("%x", st.RaftID),
			"cluster_id":             clusterIDString(st.ClusterID),
			"addr":                   st.RaftAddr,
			"api_addr":               st.HTTPURL,
			"leader":                 map[string]any{"node_id": st.Leader.NodeID, "addr": st.Leader.RaftAddr, "api_addr": st.Leader.HTTPURL},
			"fsm_index":              st.AppliedIndex,
			"fsm_term":               st.AppliedTerm,
			"db_applied_index":       st.DBApplied,
			"reap_timeout":           st.ReapTimeout.String(),
			"reap_read_only_timeout": st.ReapReadOnlyTimeout.String(),
			"dir_size":               dirSize,
			"dir_size_friendly":      friendlySize(dirSize),
			"snapshot_store":         snapshotStore(st),
			"nodes":                  nodes,
			"dir":                    st.DataDir,
			"snapshot_threshold":     st.SnapshotThreshold,
			"snapshot_interval":      st.SnapshotInterval.String(),
			"trailing_logs":          st.TrailingLogs,
			"heartbeat_timeout":      st.HeartbeatTimeout.String(),
			"election_timeout":       st.ElectionTimeout.String(),
			"raft": map[string]any{
				"state":                st.State,
				"term":                 st.Term,
				"commit_index":         st.CommitIndex,
				"applied_index":        st.AppliedIndex,
				"last_log_index":       st.LastLogIndex,
				"first_log_index":      st.FirstLogIndex,
				"last_log_term":        st.LastLogTerm,
				"fsm_pending":          st.CommitIndex - min(st.CommitIndex, st.AppliedIndex),
				"log_size_friendly":    friendlySize(st.LogBytes),
				"latest_configuration": latestConfiguration(st.Members),
				"last_snapshot_index":  st.SnapshotIndex,
				"last_snapshot_term":   st.SnapshotTerm,
				"num_peers":            max(0, len(st.Members)-1),
				"voter":                st.Voter,
				"log_size":             st.LogBytes,
				"log_segments":         st.LogSegments,
				"last_contact":         contactString(st),
				"read_index_rounds":    st.ReadIndexRounds,
				"read_index_reads":     st.ReadIndexReads,
			},
			"sqlite3": sqliteStatus(st, fk, s.store.SQLiteInfo(context.Background())),
			"db_conf": dbConf(st),
			"cdc":     storeCDC,
			"apply": map[string]any{"step_limit": st.ApplyStepLimit, "slow_threshold": st.SlowApply.String(),
				"applying": applyingStatus(st.Applying)},
		},
	}
	if cdcSection != nil {
		out["cdc"] = cdcSection
	}
	if s.allowOrigin != "" {
		out["http"].(map[string]any)["allow_origin"] = s.allowOrigin
	}
	for name, section := range s.sections {
		out[name] = section()
	}
	if t, ok := lastBackup.Load().(time.Time); ok {
		out["last_backup_time"] = t.UTC().Format(time.RFC3339Nano)
	}
	return out
}

// sqliteStatus is /status's store.sqlite3: rqlite's keys that mean something here.
func sqliteStatus(st store.Status, fk string, info db.Info) map[string]any {
	out := map[string]any{"path": st.DBPath, "size": st.DBSize + st.WALSize, "db_size": st.DBSize,
		"wal_size": st.WALSize, "fk_constraints": fk, "reads_in_progress": st.ReadsInProgress,
		"extensions": nonNil(st.Extensions.Names), "version": info.Version, "compile_options": nonNil(info.CompileOptions),
		"pragmas": map[string]any{"rw": info.PragmasRW, "ro": info.PragmasRO}, "rw_dsn": info.RWDSN, "ro_dsn": info.RODSN,
		"conn_pool_stats": map[string]any{"ro": map[string]any{"max_open_connections": info.MaxReaders, "in_use": info.InUse}},
		"size_friendly":   friendlySize(st.DBSize + st.WALSize)}
	if !info.LastModified.IsZero() {
		out["last_modified"] = info.LastModified.UTC().Format(time.RFC3339Nano)
	}
	return out
}

// treeSize is the total size of the regular files under dir (walked for /status only: not on /readyz or
// the metrics' scrapes, which read store.Status too).
func treeSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// snapshotStore is /status's store.snapshot_store. raftlite's snapshot is the database file itself, as
// of the log's snapshot index; its directory holds only copies being sent or received.
func snapshotStore(st store.Status) map[string]any {
	snaps := []string{}
	if st.SnapshotIndex > 0 {
		snaps = append(snaps, fmt.Sprintf("%d-%d", st.SnapshotTerm, st.SnapshotIndex))
	}
	var size int64
	if entries, err := os.ReadDir(st.SnapshotDir); err == nil {
		for _, e := range entries {
			if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
				size += fi.Size()
			}
		}
	}
	return map[string]any{"dir": st.SnapshotDir, "dir_size": size, "snapshots": snaps}
}

// latestConfiguration describes the membership as rqlite's raft status does.
func latestConfiguration(members []store.Member) string {
	parts := make([]string, 0, len(members))
	for _, m := range members {
		suffrage := "Nonvoter"
		if m.Voter {
			suffrage = "Voter"
		}
		parts = append(parts, fmt.Sprintf("{Suffrage:%s ID:%s Address:%s}", suffrage, m.NodeID, m.RaftAddr))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// friendlySize is a size for people: 1.5 MB.
func friendlySize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// buildStatus is /status's build: the version, and what the Go toolchain recorded of the build.
func buildStatus(version string) map[string]any {
	out := map[string]any{"version": version, "compiler_toolchain": runtime.Version(), "commit": "unknown",
		"build_time": "unknown", "compiler_command": "go build"}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range info.Settings {
			switch kv.Key {
			case "vcs.revision":
				out["commit"] = kv.Value
			case "vcs.time":
				out["build_time"] = kv.Value
			case "-tags":
				out["compiler_command"] = "go build -tags " + strconv.Quote(kv.Value)
			}
		}
	}
	return out
}

// nonNil makes an empty list [] in JSON, not null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// dbConf is /status's store.db_conf: rqlite's keys, extensions (full paths) only when there are some.
func dbConf(st store.Status) map[string]any {
	out := map[string]any{"fk_constraints": st.ForeignKeys}
	if len(st.Extensions.Paths) > 0 {
		out["extensions"] = st.Extensions.Paths
		out["extensions_digest"] = st.Extensions.Digest
	}
	return out
}

// applyingStatus shows the statement of a committed entry the node is running (nil when none is).
func applyingStatus(a *store.Applying) any {
	if a == nil {
		return nil
	}
	return map[string]any{"index": a.Index, "statement": a.SQL, "running_for": a.RunningFor.Round(time.Millisecond).String(),
		"running_for_ms": a.RunningFor.Milliseconds()}
}

func contactString(st store.Status) string {
	if st.State == "Leader" {
		return "0"
	}
	if st.LastContact > 1000*time.Hour {
		return "never"
	}
	return st.LastContact.String()
}

// nodeInfo is one node in /nodes and /leader.
type nodeInfo struct {
	ID        string  `json:"id"`
	APIAddr   string  `json:"api_addr,omitempty"`
	Addr      string  `json:"addr"`
	Version   string  `json:"version"`
	Voter     bool    `json:"voter"`
	Reachable bool    `json:"reachable"`
	Leader    bool    `json:"leader"`
	Time      float64 `json:"time,omitempty"`
	// Beyond rqlite: the node's Raft indexes, so that a console can show how far behind it is.
	CommitIndex  uint64 `json:"commit_index,omitempty"`
	AppliedIndex uint64 `json:"applied_index,omitempty"`
	TimeS        string `json:"time_s,omitempty"`
	Error        string `json:"error,omitempty"`
}

// probeNodes asks every member for its metadata in parallel.
func (s *Service) probeNodes(ctx context.Context, members []store.Member) []nodeInfo {
	leader, _ := s.store.Leader()
	out := make([]nodeInfo, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		out[i] = nodeInfo{ID: m.NodeID, APIAddr: m.HTTPAddr, Addr: m.RaftAddr, Version: "unknown", Voter: m.Voter,
			Leader: m.NodeID == leader.NodeID && leader.NodeID != ""}
		wg.Go(func() {
			start := time.Now()
			meta, err := s.store.NodeMeta(ctx, m.RaftAddr)
			elapsed := time.Since(start)
			out[i].Time, out[i].TimeS = elapsed.Seconds(), elapsed.String()
			if err != nil {
				out[i].Error = probeError(ctx, err)
				return
			}
			out[i].Reachable = true
			out[i].CommitIndex, out[i].AppliedIndex = meta.GetCommitIndex(), meta.GetAppliedIndex()
			if meta.GetVersion() != "" {
				out[i].Version = meta.GetVersion()
			}
			if meta.GetHttpAddr() != "" {
				out[i].APIAddr = meta.GetHttpAddr()
			}
		})
	}
	wg.Wait()
	return out
}

func probeError(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return "timeout waiting for node to respond"
	}
	return err.Error()
}

func (s *Service) handleNodes(w http.ResponseWriter, r *http.Request, p *params) {
	if !s.store.Status().Open {
		http.Error(w, "store nodes: store not open", http.StatusServiceUnavailable)
		return
	}
	var members []store.Member
	for _, m := range s.store.Members() {
		if m.Voter || p.nonvoters {
			members = append(members, m)
		}
	}
	ctx, cancel := s.requestContext(r, p)
	defer cancel()
	nodes := s.probeNodes(ctx, members)
	slices.SortFunc(nodes, func(a, b nodeInfo) int { return strings.Compare(a.ID, b.ID) })
	var out any
	if p.ver == "2" {
		out = map[string]any{"nodes": nodes}
	} else {
		legacy := map[string]nodeInfo{}
		for _, n := range nodes {
			legacy[n.ID] = n
		}
		out = legacy
	}
	b, _ := json.Marshal(out)
	writeJSON(w, p, http.StatusOK, b)
}

// handleReadyz serves /readyz: plain text, 200 when the node can serve.
func (s *Service) handleReadyz(w http.ResponseWriter, r *http.Request, p *params) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	lines := []string{"[+]node ok"}
	if p.noleader {
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, lines[0])
		return
	}
	fail := func(msg string) {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, strings.Join(append(lines, msg), "\n"))
	}
	if err := s.store.Fault(); err != nil {
		fail("[+]" + err.Error())
		return
	}
	leader, ok := s.store.Leader()
	if !ok {
		fail("[+]leader does not exist")
		return
	}
	ctx, cancel := s.requestContext(r, p)
	defer cancel()
	meta, err := s.store.NodeMeta(ctx, leader.RaftAddr)
	if err != nil {
		fail("[+]leader not contactable: " + err.Error())
		return
	}
	lines = append(lines, "[+]leader ok")
	if st := s.store.Status(); !st.Ready {
		fail("[+]store not ready: " + st.NotReady)
		return
	}
	lines = append(lines, "[+]store ok")
	if p.sync {
		if err := s.store.WaitApplied(ctx, meta.GetCommitIndex()); err != nil {
			fail("[+]sync " + err.Error())
			return
		}
		lines = append(lines, "[+]sync ok")
	}
	res, err := s.store.Query(ctx, &command.Request{Mode: command.Mode_MODE_QUERY,
		Statements: []*command.Statement{{Sql: "SELECT 1"}}}, store.ReadOptions{Level: store.LevelNone}, newEnv())
	if err != nil || len(res.Results) != 1 || res.Results[0].Rows == nil || len(res.Results[0].Rows.Values) != 1 ||
		res.Results[0].Rows.Values[0][0] != int64(1) {
		fail(fmt.Sprintf("[+]db not ok: (%s)", readyzDBError(res, err)))
		return
	}
	lines = append(lines, "[+]db ok")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, strings.Join(lines, "\n"))
}

// removeBody is what /remove answers, with a 400, to any body but {"id":"<node-id>"}. rqlite's 400 has no
// body at all; the status is the same, and the text says what was wrong.
const removeBody = `the body must be a JSON object with one key, "id", whose value is the node-id to remove: {"id":"n2"}`

// readyzDBError says why /readyz's SELECT 1 did not answer 1: the store's error, or the error the answer
// carries (a timeout), rather than "<nil>".
func readyzDBError(res store.Response, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case res.Error != "":
		return res.Error
	case len(res.Results) == 1 && res.Results[0].Rows != nil && res.Results[0].Rows.Error != "":
		return res.Results[0].Rows.Error
	}
	return fmt.Sprintf("unexpected answer %+v", res.Results)
}

// handleRemove serves DELETE /remove {"id":"..."}: the body must be an object with exactly that key.
func (s *Service) handleRemove(w http.ResponseWriter, r *http.Request, p *params) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || len(m) != 1 {
		http.Error(w, "invalid request body: "+removeBody, http.StatusBadRequest)
		return
	}
	id, ok := m["id"].(string)
	if !ok || id == "" {
		http.Error(w, "invalid request body: "+removeBody, http.StatusBadRequest)
		return
	}
	if p.redirect && !s.store.IsLeader() {
		s.redirect(w, r)
		return
	}
	ctx, cancel := s.requestContext(r, p)
	defer cancel()
	servedBy := s.servedByLocal()
	if !s.store.IsLeader() {
		servedBy = s.servedByLeader() // the store passes the removal on to the leader
	}
	if err := s.store.Remove(ctx, id); err != nil {
		failed(w, err, "", http.StatusInternalServerError)
		return
	}
	w.Header().Set("X-Rqlite-Served-By", servedBy)
	w.WriteHeader(http.StatusOK)
}

// clusterIDString is the hex cluster ID, or "" before the node has bootstrapped or joined a cluster.
func clusterIDString(id uint64) string {
	if id == 0 {
		return ""
	}
	return fmt.Sprintf("%x", id)
}

func authState(a *auth.Store) string {
	if a.Enabled() {
		return "enabled"
	}
	return "disabled"
}
