// Package layers checks that the packages import each other only as DESIGN.md's package map allows:
// arrows point down the layers, and a package knows nothing of the packages above it.
package layers

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/raftlite/raftlite/"

// allowed lists, for each package, the packages of this module its code (not its tests) may import. It is
// DESIGN.md's package map, as code.
var allowed = map[string][]string{
	"sqlscan":              nil,
	"rewrite":              {"sqlscan"},
	"sqlpolicy":            {"sqlscan"},
	"auth":                 nil,
	"tlsconfig":            nil,
	"errcode":              nil,
	"command":              nil,
	"internal/fsync":       nil,
	"internal/memnet":      {"errcode", "transport"},
	"db":                   {"command", "sqlpolicy", "sqlscan"},
	"cdc":                  {"tlsconfig"},
	"backup":               {"internal/fsync"},
	"disco":                nil,
	"extension":            nil,
	"raftlog":              nil,
	"transport":            {"errcode"},
	"raftnode":             {"errcode", "raftlog"},
	"nodecall":             {"auth", "command", "errcode"},
	"cluster":              {"auth", "command", "db", "errcode", "internal/fsync", "nodecall", "raftlog", "raftnode", "transport"},
	"fsm":                  {"command", "db", "errcode", "internal/fsync", "raftlog", "raftnode"},
	"store":                {"auth", "backup", "cdc", "extension", "cluster", "command", "db", "errcode", "fsm", "internal/fsync", "nodecall", "raftlog", "raftnode", "transport"},
	"metrics":              {"backup", "store"},
	"console":              nil,
	"api":                  {"auth", "backup", "command", "db", "errcode", "rewrite", "sqlpolicy", "sqlscan", "store"},
	"shell":                {"sqlscan", "tlsconfig"},
	"cmd/raftlited":        {"api", "auth", "backup", "cdc", "command", "disco", "extension", "console", "metrics", "store", "tlsconfig", "transport"},
	"cmd/raftlite":         {"shell"},
	"cmd/raftlite-bench":   nil,
	"internal/apicompat":   nil,
	"internal/testpki":     nil,
	"internal/testservers": nil,
	"internal/layers":      nil,
	"system_test":          nil,
}

func TestImportsFollowTheLayers(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files here
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		allow, known := allowed[rel]
		if !known {
			t.Errorf("package %s is not in the package map (internal/layers and DESIGN.md)", rel)
			return nil
		}
		seen++
		for _, imp := range pkg.Imports {
			dep, ours := strings.CutPrefix(imp, module)
			if ours && !slices.Contains(allow, dep) {
				t.Errorf("%s imports %s, which the package map does not allow", rel, dep)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 20 {
		t.Fatalf("checked only %d packages: the walk went wrong", seen)
	}
}
