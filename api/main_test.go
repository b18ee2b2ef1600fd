package api

import (
	"testing"

	"go.uber.org/goleak"
)

// The API's background work (the write queue) ends with its service: no goroutine is left after the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
