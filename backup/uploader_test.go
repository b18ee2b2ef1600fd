package backup

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSource is a node whose "database" is a SQLite header and a version number.
type fakeSource struct {
	mu      sync.Mutex
	leader  bool
	index   uint64
	fails   int // WriteBackup fails this many more times
	backups int
}

func (f *fakeSource) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

func (f *fakeSource) DataIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.index
}

func (f *fakeSource) WriteBackup(ctx context.Context, w io.Writer, vacuum bool) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		w.Write([]byte("partial"))
		return 0, errors.New("database being replaced")
	}
	f.backups++
	_, err := w.Write(fakeDB(f.index))
	return f.index, err
}

func (f *fakeSource) set(leader bool, index uint64) {
	f.mu.Lock()
	f.leader, f.index = leader, index
	f.mu.Unlock()
}

func fakeDB(index uint64) []byte {
	return append(append([]byte{}, sqliteHeader...), []byte(strings.Repeat("page ", 100)+string(rune('0'+index%10)))...)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newDirUploader(t *testing.T, cfg BackupConfig, src Source) (*Uploader, *dirStorage) {
	t.Helper()
	if cfg.Interval == 0 {
		cfg.Interval = time.Hour
	}
	cfg.Type = TypeFile
	cfg.File = &FileConfig{Dir: filepath.Join(t.TempDir(), "backups"), Name: "db.sqlite"}
	st, err := NewBackupStorage(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	return NewUploader(&cfg, st, src, t.TempDir(), quietLog()), st.(*dirStorage)
}

type counts struct{ ok, fail, skipped, skippedID, sumGetFail int64 }

func snapshot() counts {
	return counts{Stats.UploadsOK.Load(), Stats.UploadsFail.Load(), Stats.UploadsSkipped.Load(), Stats.UploadsSkippedID.Load(), Stats.SumGetFail.Load()}
}

func (c counts) since(before counts) counts {
	return counts{c.ok - before.ok, c.fail - before.fail, c.skipped - before.skipped, c.skippedID - before.skippedID, c.sumGetFail - before.sumGetFail}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUploaderUploadsOnlyChangedDataOnTheLeader(t *testing.T) {
	src := &fakeSource{}
	u, dir := newDirUploader(t, BackupConfig{}, src)
	ctx := context.Background()
	before := snapshot()

	u.tick(ctx) // a follower does nothing and counts nothing
	src.set(true, 0)
	u.tick(ctx) // an empty node never uploads
	if got := snapshot().since(before); got != (counts{skipped: 1}) {
		t.Fatalf("follower, then empty leader: %+v", got)
	}
	src.set(true, 3)
	u.tick(ctx)
	u.tick(ctx) // unchanged
	got := snapshot().since(before)
	if got.ok != 1 || got.skipped != 2 || got.sumGetFail != 1 {
		t.Fatalf("after one change: %+v", got)
	}
	b, err := os.ReadFile(filepath.Join(dir.dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gunzip(t, b), fakeDB(3)) {
		t.Error("uploaded file is not the gzipped backup")
	}
	var meta dirMetadata
	mb, _ := os.ReadFile(filepath.Join(dir.dir, metadataFile))
	if err := json.Unmarshal(mb, &meta); err != nil || meta.ID != "3" || meta.Name != filepath.Join(dir.dir, "db.sqlite") ||
		time.Since(time.UnixMilli(meta.Timestamp)) > time.Minute {
		t.Fatalf("METADATA.json %s: %+v %v", mb, meta, err)
	}
	for path, mode := range map[string]os.FileMode{filepath.Join(dir.dir, "db.sqlite"): 0o600, filepath.Join(dir.dir, metadataFile): 0o644} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v (%v)", path, fi.Mode().Perm(), mode, err)
		}
	}
	st := u.Status()
	if st["last_index"] != "3" || st["last_upload_bytes"].(int64) != int64(len(b)) || st["last_error"] != "" ||
		st["upload_destination"] != "dir:"+dir.dir+", file:db.sqlite" {
		t.Errorf("status %v", st)
	}
	// Nothing left in the temporary directory.
	if left, _ := filepath.Glob(filepath.Join(u.tmpDir, "*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// A new leader (or a restarted one) reads the stored ID first, and does not upload the data again.
func TestUploaderNewLeaderSkipsWhatIsStored(t *testing.T) {
	src := &fakeSource{leader: true, index: 7}
	first, dir := newDirUploader(t, BackupConfig{}, src)
	first.tick(context.Background())
	second := NewUploader(first.cfg, dir, src, t.TempDir(), quietLog())
	before := snapshot()
	second.tick(context.Background())
	second.tick(context.Background())
	if got := snapshot().since(before); got != (counts{skippedID: 1, skipped: 1}) {
		t.Fatalf("new leader with the data stored: %+v", got)
	}
	// Leadership goes away and comes back after another node uploaded newer data: read the ID again.
	src.set(false, 9)
	second.tick(context.Background())
	first.tick(context.Background())
	src.set(true, 9)
	first.tick(context.Background()) // as leader at 9: it uploads
	src.set(false, 9)
	second.tick(context.Background())
	src.set(true, 9)
	before = snapshot()
	second.tick(context.Background())
	if got := snapshot().since(before); got != (counts{skippedID: 1}) {
		t.Fatalf("leader again after another uploaded: %+v", got)
	}
	if src.backups != 2 {
		t.Errorf("%d backup files made, want 2", src.backups)
	}
}

func TestUploaderOptions(t *testing.T) {
	src := &fakeSource{leader: true, index: 4}
	u, dir := newDirUploader(t, BackupConfig{NoCompress: true, Timestamp: true}, src)
	u.now = func() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC) }
	u.tick(context.Background())
	b, err := os.ReadFile(filepath.Join(dir.dir, "20260304050607_db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, fakeDB(4)) {
		t.Error("no_compress: the file is not the plain backup")
	}
}

// A failure to make the file is retried; a failing storage fails the tick, which the next one retries.
func TestUploaderFailuresAreRetried(t *testing.T) {
	src := &fakeSource{leader: true, index: 5, fails: 2}
	u, dir := newDirUploader(t, BackupConfig{}, src)
	before := snapshot()
	fb := Stats.ProviderProvidesFail.Load()
	u.tick(context.Background())
	if got := snapshot().since(before); got.ok != 1 || Stats.ProviderProvidesFail.Load()-fb != 2 {
		t.Fatalf("after two failed copies: %+v", got)
	}
	b, _ := os.ReadFile(filepath.Join(dir.dir, "db.sqlite"))
	if !bytes.Equal(gunzip(t, b), fakeDB(5)) {
		t.Error("a retried backup file holds the failed attempt's bytes")
	}
	// The directory becomes unwritable: the tick fails, says why, and the next one succeeds.
	os.Chmod(dir.dir, 0o500)
	src.set(true, 6)
	before = snapshot()
	u.tick(context.Background())
	if os.Geteuid() != 0 { // root writes anywhere
		if got := snapshot().since(before); got.fail != 1 || !strings.Contains(u.Status()["last_error"].(string), "failed to upload to dir:") {
			t.Fatalf("unwritable directory: %+v %v", got, u.Status())
		}
	}
	os.Chmod(dir.dir, 0o700)
	u.tick(context.Background())
	if u.Status()["last_index"] != "6" {
		t.Fatalf("not retried: %v", u.Status())
	}
}

func TestDecode(t *testing.T) {
	db := fakeDB(1)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(db)
	zw.Close()
	for name, c := range map[string]struct {
		in   []byte
		want string
	}{
		"plain":     {db, ""},
		"gzipped":   {gz.Bytes(), ""},
		"truncated": {gz.Bytes()[:gz.Len()-10], "gzipped but damaged"},
		"cut early": {gz.Bytes()[:12], "gzipped but damaged"},
		"garbage":   {[]byte("hello, this is not a database at all"), "not a SQLite database"},
		"empty":     {nil, "not a SQLite database"},
	} {
		var out bytes.Buffer
		err := decode(&out, bytes.NewReader(c.in))
		if c.want == "" {
			if err != nil || !bytes.Equal(out.Bytes(), db) {
				t.Errorf("%s: %v", name, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
}

func TestDownloadFromDirectory(t *testing.T) {
	src := &fakeSource{leader: true, index: 2}
	u, dir := newDirUploader(t, BackupConfig{}, src)
	u.tick(context.Background())
	cfg := &RestoreConfig{Type: TypeFile, Timeout: time.Minute, File: &FileConfig{Dir: dir.dir, Name: "db.sqlite"}}
	st, err := NewRestoreStorage(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path, err := Download(context.Background(), cfg, st, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, fakeDB(2)) {
		t.Error("restored file differs")
	}
	cfg.File.Name = "other.sqlite"
	if st, err = NewRestoreStorage(cfg); err != nil {
		t.Fatal(err)
	}
	before := Stats.DownloadsFail.Load()
	if _, err := Download(context.Background(), cfg, st, t.TempDir()); err == nil || !strings.Contains(err.Error(), "failed to download from dir:") ||
		Stats.DownloadsFail.Load() != before+1 {
		t.Errorf("missing file: %v", err)
	}
}
