package main

import (
	"github.com/raftlite/raftlite/backup"
	"github.com/raftlite/raftlite/store"
)

// backupSetup is a checked -auto-backup file and its storage client.
type backupSetup struct {
	cfg     *backup.BackupConfig
	storage backup.Storage
}

// loadBackupConfig reads -auto-backup's file at start, so that a mistake in it stops the node at once,
// before it joins or forms a cluster (nil when the flag is not given).
func loadBackupConfig(path string) (*backupSetup, error) {
	if path == "" {
		return nil, nil
	}
	cfg, err := backup.ReadBackupConfig(path)
	if err != nil {
		return nil, wrapBackupErr(err)
	}
	st, err := backup.NewBackupStorage(cfg)
	if err != nil {
		return nil, wrapBackupErr(err)
	}
	return &backupSetup{cfg: cfg, storage: st}, nil
}

func wrapBackupErr(err error) error { return &prefixed{"failed to start auto-backups: ", err} }

// loadRestoreConfig reads -auto-restore's file (nil when the flag is not given). Its errors are fatal even
// with continue_on_failure, which covers the download and the install only.
func loadRestoreConfig(path string) (*store.AutoRestore, error) {
	if path == "" {
		return nil, nil
	}
	cfg, err := backup.ReadRestoreConfig(path)
	if err != nil {
		return nil, &prefixed{"failed to download auto-restore file: ", err}
	}
	st, err := backup.NewRestoreStorage(cfg)
	if err != nil {
		return nil, &prefixed{"failed to download auto-restore file: ", err}
	}
	return &store.AutoRestore{Config: cfg, Storage: st}, nil
}

type prefixed struct {
	prefix string
	err    error
}

func (p *prefixed) Error() string { return p.prefix + p.err.Error() }
func (p *prefixed) Unwrap() error { return p.err }
