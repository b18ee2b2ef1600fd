package store

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a node starts ends with it: after the package's tests, none of theirs is left.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
