#include "common/storage/storage_wal_vfs.h"

#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>

#include "common/storage/sqlite_vfs_shim.h"

namespace sarloop::storage_internal {
namespace {

// Room for the file object of the VFS below (the unix VFS's is about 120 bytes).
constexpr int kBelowRoom = 4096;
// Writes that follow one another are held up to this many bytes (a commit of 29 pages of 4 KiB);
// a bigger transaction goes down in pieces. The unix VFS masks a write's length to 17 bits
// (seekAndWriteFd: nBuf &= 0x1ffff; SQLite never writes more at once), so a longer write would
// go down short and fail as SQLITE_FULL: a piece must stay under 128 KiB.
constexpr size_t kHoldAtMost = 120 * 1024;
static_assert(kHoldAtMost < 0x1ffff, "the unix VFS writes at most 0x1ffff bytes at once");

std::atomic<int64_t> writes_from_sqlite{0};
std::atomic<int64_t> writes_to_file{0};
sqlite3_vfs vfs;
sqlite3_io_methods wal_methods;

// The default VFS when called: the unix VFS, or a test's VFS registered over it.
sqlite3_vfs* Below() { return ShimBelow(&vfs); }

struct WalFile {
  sqlite3_file file;   // pMethods = &wal_methods
  sqlite3_file* real;  // the VFS below's file object, right after this struct
  std::string* held;   // bytes written and not yet handed down
  sqlite3_int64 held_at;
  // Whether writes are held at all: only where the file claims powersafe overwrite. Without it,
  // SQLite pads each commit to a sector boundary and writes the padding frames after the sync,
  // and the WAL index counts them: held, they would be frames the index has and the file lacks.
  bool hold;
};
static_assert(sizeof(WalFile) % 8 == 0, "the file object below must stay aligned");

WalFile* Wal(sqlite3_file* f) { return reinterpret_cast<WalFile*>(f); }
sqlite3_file* Real(sqlite3_file* f) { return Wal(f)->real; }

// Hands down what is held. What fails to go down is dropped with its error: SQLite fails the
// call that asked (a sync, so the commit), and rolls the transaction back.
int HandDown(WalFile* w) {
  if (w->held->empty()) return SQLITE_OK;
  writes_to_file.fetch_add(1, std::memory_order_relaxed);
  const int rc = w->real->pMethods->xWrite(w->real, w->held->data(),
                                           static_cast<int>(w->held->size()), w->held_at);
  w->held->clear();
  return rc;
}

int Close(sqlite3_file* f) {
  WalFile* w = Wal(f);
  const int handed = HandDown(w);
  const int closed = w->real->pMethods->xClose(w->real);
  delete w->held;
  w->held = nullptr;
  return handed != SQLITE_OK ? handed : closed;
}

int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  if (const int rc = HandDown(Wal(f)); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xRead(Real(f), buf, n, off);
}

int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  writes_from_sqlite.fetch_add(1, std::memory_order_relaxed);
  WalFile* w = Wal(f);
  if (!w->hold) {
    writes_to_file.fetch_add(1, std::memory_order_relaxed);
    return w->real->pMethods->xWrite(w->real, buf, n, off);
  }
  const size_t held = w->held->size();
  if (held > 0 && off == w->held_at + static_cast<sqlite3_int64>(held) &&
      held + static_cast<size_t>(n) <= kHoldAtMost) {
    w->held->append(static_cast<const char*>(buf), n);
    return SQLITE_OK;
  }
  if (const int rc = HandDown(w); rc != SQLITE_OK) return rc;
  if (static_cast<size_t>(n) >= kHoldAtMost) {
    writes_to_file.fetch_add(1, std::memory_order_relaxed);
    return w->real->pMethods->xWrite(w->real, buf, n, off);
  }
  w->held->assign(static_cast<const char*>(buf), n);
  w->held_at = off;
  return SQLITE_OK;
}

int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (const int rc = HandDown(Wal(f)); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xTruncate(Real(f), size);
}

int Sync(sqlite3_file* f, int flags) {
  if (const int rc = HandDown(Wal(f)); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xSync(Real(f), flags);
}

int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  if (const int rc = HandDown(Wal(f)); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xFileSize(Real(f), size);
}

int Lock(sqlite3_file* f, int level) { return Real(f)->pMethods->xLock(Real(f), level); }
int Unlock(sqlite3_file* f, int level) { return Real(f)->pMethods->xUnlock(Real(f), level); }
int CheckReservedLock(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  if (const int rc = HandDown(Wal(f)); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}

// Only the WAL is wrapped; every other file is the VFS below's own object, methods and all.
int Open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  sqlite3_vfs* below = Below();
  if (below == &vfs || below->szOsFile > kBelowRoom) return SQLITE_CANTOPEN;
  if ((flags & SQLITE_OPEN_WAL) == 0) return below->xOpen(below, name, f, flags, out_flags);
  WalFile* w = Wal(f);
  w->file.pMethods = nullptr;
  w->real = reinterpret_cast<sqlite3_file*>(w + 1);
  std::memset(w->real, 0, below->szOsFile);
  const int rc = below->xOpen(below, name, w->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (w->real->pMethods != nullptr) w->real->pMethods->xClose(w->real);
    return rc;
  }
  w->held = new std::string();
  w->held_at = 0;
  w->hold =
      (w->real->pMethods->xDeviceCharacteristics(w->real) & SQLITE_IOCAP_POWERSAFE_OVERWRITE) != 0;
  w->file.pMethods = &wal_methods;
  return SQLITE_OK;
}

void Register() {
  wal_methods = sqlite3_io_methods{};
  wal_methods.iVersion = 1;  // a WAL file has no shared memory and is not memory-mapped
  wal_methods.xClose = Close;
  wal_methods.xRead = Read;
  wal_methods.xWrite = Write;
  wal_methods.xTruncate = Truncate;
  wal_methods.xSync = Sync;
  wal_methods.xFileSize = FileSize;
  wal_methods.xLock = Lock;
  wal_methods.xUnlock = Unlock;
  wal_methods.xCheckReservedLock = CheckReservedLock;
  wal_methods.xFileControl = FileControl;
  wal_methods.xSectorSize = SectorSize;
  wal_methods.xDeviceCharacteristics = DeviceCharacteristics;
  // Forwarded to whichever VFS is the default at each call (a test's may be registered later).
  MakeShimVfs(vfs, "sarloop-wal", /*below=*/nullptr, static_cast<int>(sizeof(WalFile)) + kBelowRoom,
              Open);
  sqlite3_vfs_register(&vfs, /*makeDflt=*/0);
}

}  // namespace

const char* CoalescingWalVfs() {
  static std::once_flag once;
  std::call_once(once, Register);
  return vfs.zName;
}

WalWriteCounts CoalescingWalWrites() {
  return {writes_from_sqlite.load(std::memory_order_relaxed),
          writes_to_file.load(std::memory_order_relaxed)};
}

}  // namespace sarloop::storage_internal
