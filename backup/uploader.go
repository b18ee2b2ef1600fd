package backup

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Source is the node as the uploader sees it.
type Source interface {
	// IsLeader reports whether this node leads: only the leader uploads.
	IsLeader() bool
	// DataIndex is the index of the last applied log entry that could change the data (the same on every
	// node for the same log).
	DataIndex() uint64
	// WriteBackup writes a consistent SQLite file of the database to w, without holding up writes, and
	// returns the data index of what it wrote.
	WriteBackup(ctx context.Context, w io.Writer, vacuum bool) (uint64, error)
}

// Making a backup file is tried this many times, this far apart, before the tick gives up.
const (
	provideAttempts = 10
	provideRetry    = 500 * time.Millisecond
)

// abortTimeout bounds the clean-up of a failed multipart upload.
const abortTimeout = 30 * time.Second

// minUploadTimeout is the least time one upload may take; a longer interval allows as long as itself. A
// store that stops answering mid-upload thus holds up the backups for that long, not for ever.
const minUploadTimeout = 15 * time.Minute

// Uploader backs the database up on the leader at every interval in which the data changed.
type Uploader struct {
	cfg     *BackupConfig
	storage Storage
	src     Source
	tmpDir  string
	log     *slog.Logger
	now     func() time.Time

	// checked is whether the storage's ID was read since this node last became leader: another leader may
	// have uploaded meanwhile. Only the Run goroutine uses it.
	checked bool

	// mu guards what Status reads while an upload runs; only the Run goroutine writes it.
	mu sync.Mutex
	// lastIndex is the data index known to be in the storage: uploaded by this node, or found there.
	lastIndex uint64
	last      Upload
}

// Upload describes the last upload, or the last failure to make one.
type Upload struct {
	Index     uint64
	Time      time.Time
	Duration  time.Duration
	Bytes     int64
	Object    string // the destination, with a timestamped name where configured
	Err       string
	ErrorTime time.Time
}

// NewUploader makes an uploader; Run starts it. tmpDir holds the backup file while it is uploaded.
func NewUploader(cfg *BackupConfig, storage Storage, src Source, tmpDir string, log *slog.Logger) *Uploader {
	return &Uploader{cfg: cfg, storage: storage, src: src, tmpDir: tmpDir, log: log, now: time.Now}
}

// Run uploads at every interval until ctx ends. The first tick comes one interval after the start.
func (u *Uploader) Run(ctx context.Context) {
	t := time.NewTicker(u.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			u.tick(ctx)
		}
	}
}

// tick backs up once if this node leads and the data changed since the last backup it knows of.
func (u *Uploader) tick(ctx context.Context) {
	if !u.src.IsLeader() {
		u.checked = false
		return
	}
	Stats.ProviderChecks.Add(1)
	index := u.src.DataIndex()
	u.mu.Lock()
	lastIndex := u.lastIndex
	u.mu.Unlock()
	if index == 0 || index <= lastIndex {
		Stats.UploadsSkipped.Add(1)
		return
	}
	if !u.checked {
		// The first time as leader: the data may be there already, uploaded by a former leader or by this
		// node before a restart. The ID is the data index, the same on every node for the same data.
		u.checked = true
		id, err := u.storage.ID(ctx, u.storage.Name())
		switch {
		case err == nil && id == strconv.FormatUint(index, 10):
			u.mu.Lock()
			u.lastIndex = index
			u.mu.Unlock()
			Stats.UploadsSkippedID.Add(1)
			u.log.Info("auto-backup: the latest data is in the storage already, not uploading it again",
				"destination", u.storage.Destination(u.storage.Name()), "index", index)
			return
		case err != nil && !errors.Is(err, ErrNoID):
			Stats.SumGetFail.Add(1)
			u.log.Warn("auto-backup: cannot read the ID of the stored backup; uploading", "err", err)
		case err != nil:
			Stats.SumGetFail.Add(1)
		}
	}
	if err := u.uploadInBackground(ctx); err != nil {
		Stats.UploadsFail.Add(1)
		u.mu.Lock()
		u.last.Err, u.last.ErrorTime = err.Error(), u.now()
		u.mu.Unlock()
		u.log.Warn("auto-backup failed; trying again at the next interval", "err", err)
	}
}

// backgroundNice is the scheduling priority (nice) of the thread that makes and uploads a backup.
const backgroundNice = 10

// uploadInBackground runs upload on an OS thread of its own at a lower priority: copying, compressing
// and signing a large database takes seconds of CPU, which on a busy node would otherwise be taken from
// the writes. The goroutine keeps its thread locked to the end, so Go discards the thread with it rather
// than handing the lowered priority on to other work.
func (u *Uploader) uploadInBackground(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		lowerThreadPriority()
		done <- u.upload(ctx)
	}()
	return <-done
}

func (u *Uploader) upload(ctx context.Context) error {
	start := u.now()
	f, err := os.CreateTemp(u.tmpDir, "upload-*")
	if err != nil {
		return fmt.Errorf("create backup file: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	index, err := u.provide(ctx, f)
	if err != nil {
		return err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	name := u.storage.Name()
	if u.cfg.Timestamp {
		name = timestamped(name, start)
	}
	dest := u.storage.Destination(name)
	uctx, cancel := context.WithTimeout(ctx, max(u.cfg.Interval, minUploadTimeout))
	defer cancel()
	if err := u.storage.Upload(uctx, name, f, size, strconv.FormatUint(index, 10)); err != nil {
		return fmt.Errorf("failed to upload to %s: %w", dest, err)
	}
	took := u.now().Sub(start)
	u.mu.Lock()
	u.lastIndex = index
	u.last = Upload{Index: index, Time: u.now(), Duration: took, Bytes: size, Object: dest}
	u.mu.Unlock()
	Stats.UploadsOK.Add(1)
	Stats.TotalUploadBytes.Add(size)
	Stats.LastUploadBytes.Store(size)
	Stats.LastUploadUnix.Store(u.now().Unix())
	u.log.Info("auto-backup uploaded", "destination", dest, "bytes", size, "index", index, "compressed", !u.cfg.NoCompress,
		"duration", took.Round(time.Millisecond).String())
	return nil
}

// provide writes the backup file (gzipped at the fastest level unless no_compress), trying again a few
// times: a copy can fail while the database is being replaced by a snapshot.
func (u *Uploader) provide(ctx context.Context, f *os.File) (uint64, error) {
	var err error
	for attempt := 1; ; attempt++ {
		var index uint64
		if index, err = u.writeFile(ctx, f); err == nil {
			Stats.ProviderProvides.Add(1)
			return index, nil
		}
		Stats.ProviderProvidesFail.Add(1)
		if attempt == provideAttempts || ctx.Err() != nil {
			return 0, fmt.Errorf("make the backup file: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(provideRetry):
		}
	}
}

func (u *Uploader) writeFile(ctx context.Context, f *os.File) (uint64, error) {
	if err := f.Truncate(0); err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if u.cfg.NoCompress {
		return u.src.WriteBackup(ctx, f, u.cfg.Vacuum)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	index, err := u.src.WriteBackup(ctx, zw, u.cfg.Vacuum)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	return index, err
}

// Status is /status's auto_backups section: rqlite's keys (last_index a string, as there), then ours.
// Secrets in the configuration are masked.
func (u *Uploader) Status() map[string]any {
	u.mu.Lock()
	last := u.last
	lastIndex := u.lastIndex
	u.mu.Unlock()
	out := map[string]any{
		"last_index":           strconv.FormatUint(lastIndex, 10),
		"last_upload_duration": last.Duration.String(),
		"last_upload_time":     last.Time.UTC().Format(time.RFC3339),
		"upload_destination":   u.storage.Destination(u.storage.Name()),
		"upload_interval":      u.cfg.Interval.String(),
		"type":                 u.cfg.Type,
		"compress":             !u.cfg.NoCompress,
		"timestamp":            u.cfg.Timestamp,
		"vacuum":               u.cfg.Vacuum,
		"sub":                  maskedSub(u.cfg.S3, u.cfg.GCS, u.cfg.File),
		"last_upload_bytes":    last.Bytes,
		"last_upload_object":   last.Object,
		"last_error":           last.Err,
	}
	if !last.ErrorTime.IsZero() {
		out["last_error_time"] = last.ErrorTime.UTC().Format(time.RFC3339)
	}
	return out
}

// maskedSub is the storage configuration with its secret replaced by asterisks.
func maskedSub(s3 *S3Config, gcs *GCSConfig, file *FileConfig) any {
	switch {
	case s3 != nil:
		c := *s3
		if c.SecretAccessKey != "" {
			c.SecretAccessKey = "********"
		}
		return c
	case gcs != nil:
		return *gcs
	case file != nil:
		return *file
	}
	return nil
}
