//go:build !linux

package backup

func lowerThreadPriority() {}
