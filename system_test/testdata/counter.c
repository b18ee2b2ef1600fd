/* A read-only virtual table module for the extension tests: CREATE VIRTUAL TABLE t USING counter(N)
 * makes a table of one column, n, holding 1 to N. */
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1
#include <stdlib.h>
#include <string.h>

typedef struct { sqlite3_vtab base; sqlite3_int64 max; } counter_vtab;
typedef struct { sqlite3_vtab_cursor base; sqlite3_int64 i, max; } counter_cursor;

static int counterConnect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out, char **err) {
  counter_vtab *t;
  int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(n INTEGER)");
  if (rc != SQLITE_OK) return rc;
  t = sqlite3_malloc(sizeof(*t));
  if (!t) return SQLITE_NOMEM;
  memset(t, 0, sizeof(*t));
  t->max = argc > 3 ? atoll(argv[3]) : 0;
  *out = &t->base;
  return SQLITE_OK;
}
static int counterDisconnect(sqlite3_vtab *v) { sqlite3_free(v); return SQLITE_OK; }
static int counterOpen(sqlite3_vtab *v, sqlite3_vtab_cursor **out) {
  counter_cursor *c = sqlite3_malloc(sizeof(*c));
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof(*c));
  c->max = ((counter_vtab *)v)->max;
  *out = &c->base;
  return SQLITE_OK;
}
static int counterClose(sqlite3_vtab_cursor *c) { sqlite3_free(c); return SQLITE_OK; }
static int counterFilter(sqlite3_vtab_cursor *c, int idx, const char *idxStr, int argc, sqlite3_value **argv) {
  ((counter_cursor *)c)->i = 1;
  return SQLITE_OK;
}
static int counterNext(sqlite3_vtab_cursor *c) { ((counter_cursor *)c)->i++; return SQLITE_OK; }
static int counterEof(sqlite3_vtab_cursor *c) { counter_cursor *p = (counter_cursor *)c; return p->i > p->max; }
static int counterColumn(sqlite3_vtab_cursor *c, sqlite3_context *ctx, int col) {
  sqlite3_result_int64(ctx, ((counter_cursor *)c)->i);
  return SQLITE_OK;
}
static int counterRowid(sqlite3_vtab_cursor *c, sqlite3_int64 *rowid) { *rowid = ((counter_cursor *)c)->i; return SQLITE_OK; }
static int counterBestIndex(sqlite3_vtab *v, sqlite3_index_info *info) { info->estimatedCost = 10; return SQLITE_OK; }

static sqlite3_module counterModule = {
  0, counterConnect, counterConnect, counterBestIndex, counterDisconnect, counterDisconnect,
  counterOpen, counterClose, counterFilter, counterNext, counterEof, counterColumn, counterRowid,
};

int sqlite3_counter_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  return sqlite3_create_module(db, "counter", &counterModule, 0);
}
