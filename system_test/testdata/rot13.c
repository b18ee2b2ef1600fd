#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1
#include <string.h>
static void rot13(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  const unsigned char *in = sqlite3_value_text(argv[0]);
  if (!in) { sqlite3_result_null(ctx); return; }
  int n = sqlite3_value_bytes(argv[0]);
  char *out = sqlite3_malloc(n + 1);
  for (int i = 0; i < n; i++) {
    unsigned char c = in[i];
    if (c >= 'a' && c <= 'z') c = 'a' + (c - 'a' + 13) % 26;
    else if (c >= 'A' && c <= 'Z') c = 'A' + (c - 'A' + 13) % 26;
    out[i] = c;
  }
  out[n] = 0;
  sqlite3_result_text(ctx, out, n, sqlite3_free);
}
#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_rot_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  return sqlite3_create_function(db, "rot13", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, 0, rot13, 0, 0);
}
