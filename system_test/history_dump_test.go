package system_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

var historyDir = flag.String("history", "", "write each chaos run's history (JSON) into this directory before checking it")

// savedOp is a porcupine operation with its concrete input and output, for the JSON dump.
type savedOp struct {
	ClientId     int
	In           kvInput
	Out          kvOutput
	Call, Return int64
}

func saveHistory(t *testing.T, name string, ops []porcupine.Operation) {
	if *historyDir == "" {
		return
	}
	saved := make([]savedOp, len(ops))
	for i, op := range ops {
		saved[i] = savedOp{op.ClientId, op.Input.(kvInput), op.Output.(kvOutput), op.Call, op.Return}
	}
	b, err := json.Marshal(saved)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(*historyDir, strings.ReplaceAll(name, "/", "_")+".json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("history written to %s", path)
}
