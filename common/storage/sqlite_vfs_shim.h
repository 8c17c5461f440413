// A VFS over another VFS. Both VFS layers sarloop has (the writer's WAL,
// common/storage/storage_wal_vfs.h; the fault suite's power-loss VFS, tests/fault/power_vfs.h)
// change how some files are written and pass every call that is not about a file (delete, access,
// path names, time, randomness, dynamic loading) to the VFS below. This fills in those calls once.
#ifndef SARLOOP_COMMON_STORAGE_SQLITE_VFS_SHIM_H_
#define SARLOOP_COMMON_STORAGE_SQLITE_VFS_SHIM_H_

#include <sqlite3.h>

namespace sarloop {

// Sets `vfs` to a version-2 VFS named `name`, with `open` as its xOpen, a file object of
// `file_size` bytes, and every other call forwarded to `below`: a fixed VFS, or null for
// whichever is the default at the time of each call.
void MakeShimVfs(sqlite3_vfs& vfs, const char* name, sqlite3_vfs* below, int file_size,
                 int (*open)(sqlite3_vfs*, const char*, sqlite3_file*, int, int*));

// The VFS `vfs` (made by MakeShimVfs) forwards to now.
sqlite3_vfs* ShimBelow(sqlite3_vfs* vfs);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_STORAGE_SQLITE_VFS_SHIM_H_
