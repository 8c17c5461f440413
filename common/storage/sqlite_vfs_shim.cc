#include "common/storage/sqlite_vfs_shim.h"

#include "common/storage/sqlite_page_cache.h"

namespace sarloop {
namespace {

int Delete(sqlite3_vfs* v, const char* name, int sync_dir) {
  sqlite3_vfs* b = ShimBelow(v);
  return b->xDelete(b, name, sync_dir);
}
int Access(sqlite3_vfs* v, const char* name, int flags, int* out) {
  sqlite3_vfs* b = ShimBelow(v);
  return b->xAccess(b, name, flags, out);
}
int FullPathname(sqlite3_vfs* v, const char* name, int n, char* out) {
  sqlite3_vfs* b = ShimBelow(v);
  return b->xFullPathname(b, name, n, out);
}
void* DlOpen(sqlite3_vfs* v, const char* name) {
  sqlite3_vfs* b = ShimBelow(v);
  return b->xDlOpen(b, name);
}
void DlError(sqlite3_vfs* v, int n, char* msg) {
  sqlite3_vfs* b = ShimBelow(v);
  b->xDlError(b, n, msg);
}
void (*DlSym(sqlite3_vfs* v, void* h, const char* sym))(void) {
  sqlite3_vfs* b = ShimBelow(v);
  return b->xDlSym(b, h, sym);
}
void DlClose(sqlite3_vfs* v, void* h) {
  sqlite3_vfs* b = ShimBelow(v);
  b->xDlClose(b, h);
}
int Randomness(sqlite3_vfs* v, int n, char* out) {
  sqlite3_vfs* b = ShimBelow(v);
  return b->xRandomness(b, n, out);
}
int Sleep(sqlite3_vfs* v, int us) {
  sqlite3_vfs* b = ShimBelow(v);
  return b->xSleep(b, us);
}
int CurrentTime(sqlite3_vfs* v, double* out) {
  sqlite3_vfs* b = ShimBelow(v);
  return b->xCurrentTime(b, out);
}
int GetLastError(sqlite3_vfs* v, int n, char* out) {
  sqlite3_vfs* b = ShimBelow(v);
  return b->xGetLastError(b, n, out);
}
int CurrentTimeInt64(sqlite3_vfs* v, sqlite3_int64* out) {
  sqlite3_vfs* b = ShimBelow(v);
  return b->xCurrentTimeInt64(b, out);
}

}  // namespace

sqlite3_vfs* ShimBelow(sqlite3_vfs* vfs) {
  return vfs->pAppData != nullptr ? static_cast<sqlite3_vfs*>(vfs->pAppData)
                                  : sqlite3_vfs_find(nullptr);
}

void MakeShimVfs(sqlite3_vfs& vfs, const char* name, sqlite3_vfs* below, int file_size,
                 int (*open)(sqlite3_vfs*, const char*, sqlite3_file*, int, int*)) {
  // Registering a VFS starts SQLite, after which its page cache can no longer be chosen.
  storage_internal::InstallSqlitePageCache();
  vfs = sqlite3_vfs{};
  vfs.iVersion = 2;
  vfs.szOsFile = file_size;
  vfs.pAppData = below;
  vfs.mxPathname = (below != nullptr ? below : sqlite3_vfs_find(nullptr))->mxPathname;
  vfs.zName = name;
  vfs.xOpen = open;
  vfs.xDelete = Delete;
  vfs.xAccess = Access;
  vfs.xFullPathname = FullPathname;
  vfs.xDlOpen = DlOpen;
  vfs.xDlError = DlError;
  vfs.xDlSym = DlSym;
  vfs.xDlClose = DlClose;
  vfs.xRandomness = Randomness;
  vfs.xSleep = Sleep;
  vfs.xCurrentTime = CurrentTime;
  vfs.xGetLastError = GetLastError;
  vfs.xCurrentTimeInt64 = CurrentTimeInt64;
}

}  // namespace sarloop
