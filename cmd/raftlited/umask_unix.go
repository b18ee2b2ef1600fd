//go:build unix

package main

import "syscall"

// restrictFileModes makes every file and directory the process creates readable by its owner only,
// including those SQLite creates itself.
func restrictFileModes() { syscall.Umask(0o077) }
