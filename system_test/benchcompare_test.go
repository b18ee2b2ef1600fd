package system_test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// raftlite-bench's comparison mode starts both contenders with the flags rqlited takes (Raft addresses in
// -join) and prints a ratio for every scenario. rqlited cannot be built here (its module is not served by
// the module proxy), so raftlited stands in for it: the mode itself is what is tested, not the figures.
func TestBenchCompareMode(t *testing.T) {
	bench := filepath.Join(t.TempDir(), "raftlite-bench")
	if out, err := exec.Command("go", "build", "-o", bench, "github.com/raftlite/raftlite/cmd/raftlite-bench").CombinedOutput(); err != nil {
		t.Fatalf("build raftlite-bench: %v\n%s", err, out)
	}
	out, err := exec.Command(bench, "-raftlited", raftlitedBin, "-compare", raftlitedBin,
		"-runs", "1", "-duration", "300ms", "-serial", "20").CombinedOutput()
	if err != nil {
		t.Fatalf("raftlite-bench -compare: %v\n%s", err, out)
	}
	row := regexp.MustCompile(`(?m)^\| (.+) \| [0-9.]+ \| [0-9.]+ \| [0-9]+\.[0-9]{2}x \|$`)
	var scenarios []string
	for _, m := range row.FindAllStringSubmatch(string(out), -1) {
		scenarios = append(scenarios, m[1])
	}
	want := []string{"1 client", "32 clients", "4 clients", "level none", "linearizable", "strong"}
	if len(scenarios) != len(want) {
		t.Fatalf("%d scenario rows with a ratio, want %d:\n%s", len(scenarios), len(want), out)
	}
	for i, w := range want {
		if !strings.Contains(scenarios[i], w) {
			t.Errorf("row %d is %q, want %q in it", i, scenarios[i], w)
		}
	}

	out, err = exec.Command(bench, "-compare", filepath.Join(t.TempDir(), "rqlited")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "-compare") {
		t.Fatalf("-compare with a missing binary: %v\n%s", err, out)
	}
}
