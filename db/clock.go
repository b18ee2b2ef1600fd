package db

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// The public, stable (iVersion 3) layout of sqlite3_vfs from sqlite3.h. It is declared here because the
// SQLite header lives inside the go-sqlite3 module, which also compiles and links the library itself.
typedef struct sqlite3_file sqlite3_file;
typedef int (*sqlite3_syscall_ptr)(void);
typedef struct sqlite3_vfs sqlite3_vfs;
struct sqlite3_vfs {
	int iVersion;
	int szOsFile;
	int mxPathname;
	sqlite3_vfs *pNext;
	const char *zName;
	void *pAppData;
	int (*xOpen)(sqlite3_vfs*, const char*, sqlite3_file*, int, int*);
	int (*xDelete)(sqlite3_vfs*, const char*, int);
	int (*xAccess)(sqlite3_vfs*, const char*, int, int*);
	int (*xFullPathname)(sqlite3_vfs*, const char*, int, char*);
	void *(*xDlOpen)(sqlite3_vfs*, const char*);
	void (*xDlError)(sqlite3_vfs*, int, char*);
	void (*(*xDlSym)(sqlite3_vfs*, void*, const char*))(void);
	void (*xDlClose)(sqlite3_vfs*, void*);
	int (*xRandomness)(sqlite3_vfs*, int, char*);
	int (*xSleep)(sqlite3_vfs*, int);
	int (*xCurrentTime)(sqlite3_vfs*, double*);
	int (*xGetLastError)(sqlite3_vfs*, int, char*);
	int (*xCurrentTimeInt64)(sqlite3_vfs*, int64_t*);
	int (*xSetSystemCall)(sqlite3_vfs*, const char*, sqlite3_syscall_ptr);
	sqlite3_syscall_ptr (*xGetSystemCall)(sqlite3_vfs*, const char*);
	const char *(*xNextSystemCall)(sqlite3_vfs*, const char*);
};
extern sqlite3_vfs *sqlite3_vfs_find(const char*);
extern int sqlite3_vfs_register(sqlite3_vfs*, int);

// A clock VFS is the default VFS with its clock replaced by a value the writer sets before each command.
typedef struct {
	sqlite3_vfs vfs;
	volatile int64_t julian_ms;
} clock_vfs;

static int clock_time64(sqlite3_vfs *v, int64_t *t) {
	*t = ((clock_vfs*)v)->julian_ms;
	return 0;
}

static int clock_time(sqlite3_vfs *v, double *t) {
	*t = ((clock_vfs*)v)->julian_ms / 86400000.0;
	return 0;
}

static clock_vfs *clock_vfs_register(const char *name) {
	sqlite3_vfs *base = sqlite3_vfs_find(0);
	if (base == 0 || base->iVersion < 2) return 0;
	clock_vfs *c = calloc(1, sizeof(clock_vfs));
	if (c == 0) return 0;
	memcpy(&c->vfs, base, sizeof(sqlite3_vfs));
	c->vfs.pNext = 0;
	c->vfs.zName = strdup(name);
	c->vfs.xCurrentTimeInt64 = clock_time64;
	c->vfs.xCurrentTime = clock_time;
	if (sqlite3_vfs_register(&c->vfs, 0) != 0) return 0;
	return c;
}

static void clock_vfs_set(clock_vfs *c, int64_t julian_ms) { c->julian_ms = julian_ms; }
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// unixToJulianMs is the Unix epoch expressed in milliseconds since the Julian day epoch, SQLite's time base.
const unixToJulianMs = 210866760000000

// clock is a registered SQLite VFS whose notion of "now" is set by the writer. VFSes cannot be unregistered
// while connections may use them, so they are recycled through a free list rather than freed.
type clock struct {
	name string
	vfs  *C.clock_vfs
}

var clocks struct {
	sync.Mutex
	free []*clock
	n    int
}

func acquireClock() (*clock, error) {
	clocks.Lock()
	defer clocks.Unlock()
	if n := len(clocks.free); n > 0 {
		c := clocks.free[n-1]
		clocks.free = clocks.free[:n-1]
		return c, nil
	}
	clocks.n++
	name := fmt.Sprintf("raftlite-clock-%d", clocks.n)
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	v := C.clock_vfs_register(cname)
	if v == nil {
		return nil, fmt.Errorf("register SQLite clock VFS %s", name)
	}
	return &clock{name: name, vfs: v}, nil
}

func releaseClock(c *clock) {
	if c == nil {
		return
	}
	clocks.Lock()
	clocks.free = append(clocks.free, c)
	clocks.Unlock()
}

// set makes SQLite's 'now', CURRENT_TIMESTAMP and friends on this clock's connections equal unixMs.
func (c *clock) set(unixMs int64) { C.clock_vfs_set(c.vfs, C.int64_t(unixMs+unixToJulianMs)) }
