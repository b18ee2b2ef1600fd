//go:build sqlite_preupdate_hook

package db

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_value sqlite3_value;
extern void *sqlite3_preupdate_hook(sqlite3*, void(*)(void*, sqlite3*, int, const char*, const char*, long long, long long), void*);
extern int sqlite3_preupdate_old(sqlite3*, int, sqlite3_value**);
extern int sqlite3_preupdate_new(sqlite3*, int, sqlite3_value**);
extern int sqlite3_preupdate_count(sqlite3*);
extern int sqlite3_value_type(sqlite3_value*);
extern long long sqlite3_value_int64(sqlite3_value*);
extern double sqlite3_value_double(sqlite3_value*);
extern const void *sqlite3_value_blob(sqlite3_value*);
extern const unsigned char *sqlite3_value_text(sqlite3_value*);
extern int sqlite3_value_bytes(sqlite3_value*);

// The hook appends one record per changed row to a buffer, which Go decodes after each statement
// (capture.go has the layout). Copying the row images in C costs no call into Go per row.
typedef struct {
	unsigned char *buf;
	size_t len, cap;
	int images; // 0: row ids only
	int oom;
} cdc_buf;

static int cdc_grow(cdc_buf *b, size_t n) {
	if (b->len + n <= b->cap) return 1;
	size_t cap = b->cap ? b->cap * 2 : 4096;
	while (cap < b->len + n) cap *= 2;
	unsigned char *p = realloc(b->buf, cap);
	if (!p) { b->oom = 1; return 0; }
	b->buf = p;
	b->cap = cap;
	return 1;
}

static void cdc_put(cdc_buf *b, const void *p, size_t n) {
	if (cdc_grow(b, n)) { memcpy(b->buf + b->len, p, n); b->len += n; }
}

static void cdc_u8(cdc_buf *b, unsigned char v) { cdc_put(b, &v, 1); }

static void cdc_u64(cdc_buf *b, uint64_t v) {
	unsigned char le[8];
	for (int i = 0; i < 8; i++) le[i] = (unsigned char)(v >> (8 * i));
	cdc_put(b, le, 8);
}

static void cdc_bytes(cdc_buf *b, const void *p, int n) {
	cdc_u64(b, (uint64_t)(n < 0 ? 0 : n));
	if (n > 0) cdc_put(b, p, (size_t)n);
}

static void cdc_image(cdc_buf *b, sqlite3 *db, int n, int isNew) {
	cdc_u64(b, (uint64_t)n);
	for (int i = 0; i < n; i++) {
		sqlite3_value *v = 0;
		int rc = isNew ? sqlite3_preupdate_new(db, i, &v) : sqlite3_preupdate_old(db, i, &v);
		if (rc != 0 || v == 0) { cdc_u8(b, 0); continue; } // 0: the value could not be read
		int t = sqlite3_value_type(v);
		cdc_u8(b, (unsigned char)t);
		switch (t) {
		case 1: cdc_u64(b, (uint64_t)sqlite3_value_int64(v)); break;
		case 2: { double d = sqlite3_value_double(v); uint64_t u; memcpy(&u, &d, 8); cdc_u64(b, u); break; }
		case 3: { const unsigned char *s = sqlite3_value_text(v); cdc_bytes(b, s, sqlite3_value_bytes(v)); break; }
		case 4: { const void *p = sqlite3_value_blob(v); cdc_bytes(b, p, sqlite3_value_bytes(v)); break; }
		default: break; // NULL
		}
	}
}

static void cdc_hook(void *arg, sqlite3 *db, int op, const char *zDb, const char *zTab, long long oldKey, long long newKey) {
	cdc_buf *b = (cdc_buf*)arg;
	// Only the main database's tables hold data; raftlite's own tables are not the user's changes.
	if (strcmp(zDb, "main") != 0 || strncmp(zTab, "_raftlite_", 10) == 0) return;
	cdc_u8(b, (unsigned char)op);
	cdc_bytes(b, zTab, (int)strlen(zTab));
	cdc_u64(b, (uint64_t)oldKey);
	cdc_u64(b, (uint64_t)newKey);
	int n = b->images ? sqlite3_preupdate_count(db) : 0;
	if (op == 9 || op == 23) cdc_image(b, db, n, 0); else cdc_u64(b, 0); // DELETE, UPDATE: before
	if (op == 18 || op == 23) cdc_image(b, db, n, 1); else cdc_u64(b, 0); // INSERT, UPDATE: after
}

static cdc_buf *cdc_install(void *db, int images) {
	cdc_buf *b = calloc(1, sizeof(cdc_buf));
	if (!b) return 0;
	b->images = images;
	sqlite3_preupdate_hook((sqlite3*)db, cdc_hook, b);
	return b;
}

static void cdc_remove(void *db, cdc_buf *b) {
	sqlite3_preupdate_hook((sqlite3*)db, 0, 0);
	free(b->buf);
	free(b);
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// CaptureSupported reports whether this build can capture row changes: SQLite's pre-update hook is
// compiled in only with the sqlite_preupdate_hook build tag.
const CaptureSupported = true

// hookBuffer is the C buffer the pre-update hook fills.
type hookBuffer struct {
	db unsafe.Pointer
	b  *C.cdc_buf
}

func installHook(db unsafe.Pointer, images bool) (*hookBuffer, error) {
	img := C.int(0)
	if images {
		img = 1
	}
	b := C.cdc_install(db, img)
	if b == nil {
		return nil, errors.New("install the change capture hook: out of memory")
	}
	return &hookBuffer{db: db, b: b}, nil
}

// take returns what the hook recorded since the last take (a copy), and empties the buffer. It reports
// an error if the hook ran out of memory meanwhile.
func (h *hookBuffer) take() ([]byte, error) {
	if h.b.oom != 0 {
		h.b.oom, h.b.len = 0, 0
		return nil, errors.New("change capture: out of memory")
	}
	if h.b.len == 0 {
		return nil, nil
	}
	out := C.GoBytes(unsafe.Pointer(h.b.buf), C.int(h.b.len))
	h.b.len = 0
	return out, nil
}

// pending reports whether the hook recorded anything since the last take.
func (h *hookBuffer) pending() bool { return h.b.len > 0 || h.b.oom != 0 }

func (h *hookBuffer) remove() {
	if h.b != nil {
		C.cdc_remove(h.db, h.b)
		h.b = nil
	}
}
