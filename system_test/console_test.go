package system_test

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var screenshots = flag.String("screenshots", "", "write a screenshot of each console view into this directory")

// chromium finds the browser: $RAFTLITE_CHROMIUM, else chromium (or chromium-browser, google-chrome) on
// PATH, else the one scripts/test-deps.sh unpacks for a user who is not root. make test runs that script
// first, and puts its bin directory on PATH.
func chromium(t *testing.T) string {
	if path := os.Getenv("RAFTLITE_CHROMIUM"); path != "" {
		return path
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	tools := os.Getenv("RAFTLITE_TOOLS")
	if tools == "" {
		if cache, err := os.UserCacheDir(); err == nil {
			tools = filepath.Join(cache, "raftlite", "tools")
		}
	}
	if path := filepath.Join(tools, "bin", "chromium"); tools != "" {
		if _, err := os.Stat(path); err == nil {
			return path
		}
	}
	t.Fatal("TestConsole needs headless Chromium, which is not installed: run scripts/test-deps.sh (make test does), or set RAFTLITE_CHROMIUM to a Chromium binary")
	return ""
}

// The web console of a 3-node cluster, in headless Chromium: a query at a chosen level shows its rows, a
// write reports its effect, the schema lists tables, columns and indexes, and the cluster view follows a
// leader change when the leader is stopped.
func TestConsole(t *testing.T) {
	browser := chromium(t)
	// The nodes capture changes for the pull feed, so that the cluster view shows CDC's state.
	nodes := cluster(t, 3, "-cdc-config", "pull")
	leader := waitLeader(t, nodes...)
	viewer := followers(leader, nodes)[0]
	leader.mustExecute("CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT NOT NULL, species TEXT)",
		"CREATE INDEX pets_species ON pets(species)",
		"INSERT INTO pets(name, species) VALUES ('fiona', 'cat'), ('rex', 'dog'), ('nemo', NULL)")

	// chromedp's defaults include --headless, --no-first-run, --disable-background-networking and
	// --disable-sync; the network here is closed, so nothing else may reach out either.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Headless, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1100, 700))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelTimeout()
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		if *screenshots == "" {
			return
		}
		var png []byte
		run("screenshot "+name, chromedp.CaptureScreenshot(&png))
		if err := os.WriteFile(filepath.Join(*screenshots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// SQL: a linearizable query on a follower shows the rows; a write shows what it changed.
	var text string
	run("query", chromedp.Navigate(viewer.url("/console/#sql")), chromedp.WaitVisible("#sql-text"),
		chromedp.SetValue("#sql-text", "SELECT id, name, species FROM pets ORDER BY id"),
		chromedp.SetValue("#sql-level", "linearizable"), chromedp.Click("#sql-run"),
		chromedp.WaitVisible("#sql-results table"), chromedp.Text("#sql-results", &text))
	for _, want := range []string{"fiona", "rex", "nemo", "NULL", "species"} {
		if !strings.Contains(text, want) {
			t.Fatalf("query results lack %q:\n%s", want, text)
		}
	}
	var timing string
	run("timing", chromedp.Text("#sql-time", &timing))
	if !strings.Contains(timing, "linearizable") || !strings.Contains(timing, "ms") {
		t.Errorf("timing line: %q", timing)
	}
	shot("console-sql.png")
	run("write", chromedp.SetValue("#sql-text", "INSERT INTO pets(name, species) VALUES ('tweety', 'bird')"),
		chromedp.Click("#sql-run"), chromedp.WaitVisible("#sql-results .changes"), chromedp.Text("#sql-results", &text))
	if !strings.Contains(text, "1 row affected") {
		t.Fatalf("write result: %q", text)
	}
	run("error", chromedp.SetValue("#sql-text", "SELECT nope FROM pets"), chromedp.Click("#sql-run"),
		chromedp.WaitVisible("#sql-results .result-error"), chromedp.Text("#sql-results", &text))
	if !strings.Contains(text, "no such column: nope") {
		t.Fatalf("error result: %q", text)
	}

	// Schema: tables, columns, indexes.
	run("schema", chromedp.Navigate(viewer.url("/console/#schema")), chromedp.WaitVisible(`[data-table="pets"] table`),
		chromedp.Text("#schema-tables", &text))
	for _, want := range []string{"pets", "name", "TEXT", "species", "pets_species"} {
		if !strings.Contains(text, want) {
			t.Fatalf("schema lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "_raftlite_") {
		t.Fatalf("schema shows raftlite's bookkeeping:\n%s", text)
	}
	shot("console-schema.png")

	// Cluster: three nodes, the leader marked; stop it and the view shows another leader and the old one
	// unreachable.
	run("cluster", chromedp.Navigate(viewer.url("/console/#cluster")),
		chromedp.WaitVisible(`#nodes tr[data-role="leader"][data-node="`+leader.id+`"]`))
	var rows int
	run("count nodes", chromedp.Evaluate(`document.querySelectorAll("#nodes tbody tr").length`, &rows))
	if rows != 3 {
		t.Fatalf("the cluster view lists %d nodes, want 3", rows)
	}
	var cdcText string
	run("CDC state", chromedp.WaitVisible("#cdc-summary"), chromedp.Text("#cdc-summary", &cdcText))
	if !strings.HasPrefix(cdcText, "Change data capture to pull (nothing is sent: consumers read the pull feed): ") || !strings.Contains(cdcText, "entries queued") {
		t.Errorf("the cluster view's CDC line: %q", cdcText)
	}
	shot("console-cluster.png")
	leader.stop()
	run("leader change", chromedp.WaitVisible(`#nodes tr[data-role="leader"]:not([data-node="`+leader.id+`"])`),
		chromedp.WaitVisible(`#nodes tr[data-node="`+leader.id+`"] td.unreachable`))
	shot("console-cluster-after-failover.png")
}
