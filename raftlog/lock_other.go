//go:build !unix

package raftlog

import "os"

// lockDir is a no-op where flock is unavailable; raftlite only runs on unix in production.
func lockDir(*os.File) error { return nil }
