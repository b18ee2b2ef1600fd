//go:build !sqlite_preupdate_hook

package db

import (
	"errors"
	"unsafe"
)

// CaptureSupported reports whether this build can capture row changes: SQLite's pre-update hook is
// compiled in only with the sqlite_preupdate_hook build tag (the Makefile sets it).
const CaptureSupported = false

type hookBuffer struct{}

func installHook(unsafe.Pointer, bool) (*hookBuffer, error) {
	return nil, errors.New("change data capture needs a build with the sqlite_preupdate_hook tag (make build sets it)")
}

func (h *hookBuffer) take() ([]byte, error) { return nil, nil }
func (h *hookBuffer) pending() bool         { return false }
func (h *hookBuffer) remove()               {}
