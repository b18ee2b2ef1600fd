package api

import (
	"testing"

	"github.com/raftlite/raftlite/internal/apicompat"
)

// The compatibility suite (internal/apicompat), against the stand-in store; system_test runs it against
// a real node.

func TestCompatDispatch(t *testing.T)        { apicompat.RunDispatch(t, newTestServer(t).url) }
func TestCompatParameters(t *testing.T)      { apicompat.RunParameters(t, newTestServer(t).url) }
func TestCompatResults(t *testing.T)         { apicompat.RunResults(t, newTestServer(t).url) }
func TestCompatRequestEndpoint(t *testing.T) { apicompat.RunRequestEndpoint(t, newTestServer(t).url) }
func TestCompatSQLAnalysis(t *testing.T)     { apicompat.RunSQLAnalysis(t, newTestServer(t).url) }
func TestCompatBackupLoadBoot(t *testing.T)  { apicompat.RunBackupLoadBoot(t, newTestServer(t).url) }
func TestCompatLeaderAndVars(t *testing.T)   { apicompat.RunLeaderAndVars(t, newTestServer(t).url) }
func TestCompatQueuedWrites(t *testing.T)    { apicompat.RunQueuedWrites(t, newTestServer(t).url) }
