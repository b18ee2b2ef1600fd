package system_test

import (
	"testing"
	"time"

	"github.com/raftlite/raftlite/internal/apicompat"
)

// The API's compatibility suite (internal/apicompat) against a real one-node cluster, each part on a
// node of its own: the API's tests run it against a stand-in, this checks the node behind it.
func TestCompatibilityOnARealNode(t *testing.T) {
	for name, run := range map[string]func(*testing.T, string){
		"dispatch": apicompat.RunDispatch, "parameters": apicompat.RunParameters, "results": apicompat.RunResults,
		"request": apicompat.RunRequestEndpoint, "sql": apicompat.RunSQLAnalysis, "backup-load-boot": apicompat.RunBackupLoadBoot,
		"leader-vars": apicompat.RunLeaderAndVars, "queued-writes": apicompat.RunQueuedWrites,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := newNode(t, "n1").start()
			waitFor(t, "n1 ready", 20*time.Second, func() bool { c, _ := n.readyz(); return c == 200 })
			run(t, n.url(""))
		})
	}
}
