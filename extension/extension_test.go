package extension

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path string, b []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func zipOf(t *testing.T, path string, files map[string]string) string {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, _ := zw.Create(name)
		w.Write([]byte(content))
	}
	zw.Close()
	return writeFile(t, path, buf.Bytes())
}

func tarGzOf(t *testing.T, path string, files map[string]string) string {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		if strings.HasSuffix(name, "/") {
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: name, Size: int64(len(content)), Mode: 0o644, Typeflag: tar.TypeReg})
		tw.Write([]byte(content))
	}
	tw.Close()
	gz.Close()
	return writeFile(t, path, buf.Bytes())
}

// Every form gathers the same files, and the same files give the same digest.
func TestPrepareForms(t *testing.T) {
	src := t.TempDir()
	lib := map[string]string{"a.so": "library a", "b.so": "library b"}
	dir := filepath.Join(src, "dir")
	for n, c := range lib {
		writeFile(t, filepath.Join(dir, n), []byte(c))
	}
	writeFile(t, filepath.Join(dir, ".hidden"), []byte("not loaded"))
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	forms := map[string]string{
		"dir":    dir,
		"zip":    zipOf(t, filepath.Join(src, "libs.zip"), lib),
		"tar.gz": tarGzOf(t, filepath.Join(src, "libs.tgz"), lib),
		"files":  writeFile(t, filepath.Join(src, "x", "a.so"), []byte("library a")) + "," + writeFile(t, filepath.Join(src, "y", "b.so"), []byte("library b")),
		// classified by content: a zip with another name
		"zip named .so": zipOf(t, filepath.Join(src, "odd.so"), lib),
	}
	var digest string
	for name, list := range forms {
		set, err := Prepare(list, filepath.Join(t.TempDir(), "data"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(set.Names, []string{"a.so", "b.so"}) || len(set.Paths) != 2 || set.Digest == "" {
			t.Fatalf("%s: %+v", name, set)
		}
		if b, _ := os.ReadFile(set.Paths[1]); string(b) != "library b" {
			t.Errorf("%s: b.so holds %q", name, b)
		}
		if digest == "" {
			digest = set.Digest
		} else if set.Digest != digest {
			t.Errorf("%s: digest %s differs from %s", name, set.Digest, digest)
		}
	}
	// Other content, other digest; none, no digest; a restart clears the directory.
	data := filepath.Join(t.TempDir(), "data")
	other, err := Prepare(writeFile(t, filepath.Join(src, "z", "a.so"), []byte("library a, version 2")), data)
	if err != nil || other.Digest == digest {
		t.Fatalf("changed library: %+v %v", other, err)
	}
	none, err := Prepare("", data)
	if err != nil || none.Digest != "" || len(none.Names) != 0 {
		t.Fatalf("none: %+v %v", none, err)
	}
	if _, err := os.Stat(filepath.Join(data, "extensions", "a.so")); !os.IsNotExist(err) {
		t.Error("the extensions of the last start were left in place")
	}
}

func TestPrepareErrors(t *testing.T) {
	src := t.TempDir()
	for list, want := range map[string]string{
		filepath.Join(src, "missing.so"): "extension path does not exist: " + filepath.Join(src, "missing.so"),
		"":                               "",
		zipOf(t, filepath.Join(src, "sub.zip"), map[string]string{"lib/a.so": "x"}):               "zip file contains subdirectories",
		tarGzOf(t, filepath.Join(src, "sub.tgz"), map[string]string{"lib/": "", "lib/a.so": "x"}): "tar.gz file contains subdirectories",
		writeFile(t, filepath.Join(src, "plain.gz"), func() []byte {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write([]byte("not a tar archive at all, just text"))
			zw.Close()
			return b.Bytes()
		}()): "failed to load extensions from tar.gz file " + filepath.Join(src, "plain.gz"),
		"a.so,": "extension path does not exist: ",
	} {
		_, err := Prepare(list, filepath.Join(t.TempDir(), "data"))
		if want == "" {
			if err != nil {
				t.Errorf("empty list: %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", list, err, want)
		}
	}
}
