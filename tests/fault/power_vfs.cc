#include "tests/fault/power_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/storage/sqlite_page_cache.h"
#include "common/storage/sqlite_vfs_shim.h"

namespace sarloop::testing {
namespace {

struct Undo {
  int64_t offset;
  std::string old_bytes;
};

// What a file looked like at its last sync, as far as later writes have changed it.
struct FileState {
  int64_t synced_size = -1;  // -1 until the file is first opened
  std::vector<Undo> undo;
};

std::mutex mu;
std::map<std::string, FileState> files;  // by path
std::atomic<bool> power_off{false};
std::atomic<int64_t> countdown{-1};
std::atomic<int64_t> operations{0};
std::atomic<bool (*)()> disk_full{nullptr};
std::atomic<int (*)()> sync_delay{nullptr};
sqlite3_vfs* base = nullptr;
sqlite3_vfs vfs;
sqlite3_io_methods methods;

struct PowerFile {
  sqlite3_file file;
  sqlite3_file* real;
  std::string* path;  // null for files without a name (temporary)
};

// Counts a mutating call; false when the power is (now) off.
bool Powered() {
  if (power_off.load()) return false;
  operations.fetch_add(1);
  int64_t left = countdown.load();
  if (left >= 0) {
    if (left == 0) {
      power_off.store(true);
      return false;
    }
    countdown.store(left - 1);
  }
  return true;
}

sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<PowerFile*>(f)->real; }

int64_t SizeOf(sqlite3_file* real) {
  sqlite3_int64 size = 0;
  return real->pMethods->xFileSize(real, &size) == SQLITE_OK ? size : 0;
}

// Remembers what [offset, offset + n) holds now, where it lies within the synced length.
void Remember(PowerFile* pf, int64_t offset, int64_t n) {
  if (pf->path == nullptr) return;
  std::lock_guard lock(mu);
  FileState& st = files[*pf->path];
  const int64_t end = std::min(offset + n, st.synced_size);
  if (offset >= end) return;
  std::string old(end - offset, '\0');
  pf->real->pMethods->xRead(pf->real, old.data(), static_cast<int>(old.size()), offset);
  st.undo.push_back(Undo{offset, std::move(old)});
}

int Close(sqlite3_file* f) {
  auto* pf = reinterpret_cast<PowerFile*>(f);
  const int rc = pf->real->pMethods->xClose(pf->real);
  delete pf->path;
  pf->path = nullptr;
  return rc;
}

int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  if (power_off.load()) return SQLITE_IOERR_READ;
  return Real(f)->pMethods->xRead(Real(f), buf, n, off);
}

bool DiskFull() {
  bool (*full)() = disk_full.load();
  return full != nullptr && full();
}

int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (!Powered()) return SQLITE_IOERR_WRITE;
  if (DiskFull()) return SQLITE_FULL;
  Remember(reinterpret_cast<PowerFile*>(f), off, n);
  return Real(f)->pMethods->xWrite(Real(f), buf, n, off);
}

int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (!Powered()) return SQLITE_IOERR_TRUNCATE;
  if (DiskFull()) return SQLITE_FULL;
  auto* pf = reinterpret_cast<PowerFile*>(f);
  Remember(pf, size, SizeOf(pf->real) - size);
  return pf->real->pMethods->xTruncate(pf->real, size);
}

int Sync(sqlite3_file* f, int flags) {
  if (!Powered()) return SQLITE_IOERR_FSYNC;
  if (int (*delay)() = sync_delay.load()) {
    if (const int ms = delay(); ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  }
  auto* pf = reinterpret_cast<PowerFile*>(f);
  const int rc = pf->real->pMethods->xSync(pf->real, flags);
  if (rc == SQLITE_OK && pf->path != nullptr) {
    std::lock_guard lock(mu);
    FileState& st = files[*pf->path];
    st.undo.clear();
    st.synced_size = SizeOf(pf->real);
  }
  return rc;
}

int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  if (power_off.load()) return SQLITE_IOERR_FSTAT;
  return Real(f)->pMethods->xFileSize(Real(f), size);
}

int Lock(sqlite3_file* f, int l) { return Real(f)->pMethods->xLock(Real(f), l); }
int Unlock(sqlite3_file* f, int l) { return Real(f)->pMethods->xUnlock(Real(f), l); }
int CheckReservedLock(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) {
  // Claim nothing (no atomic or safe-append writes), so SQLite syncs as it must on a plain disk.
  return 0;
}
int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
int ShmUnmap(sqlite3_file* f, int del) { return Real(f)->pMethods->xShmUnmap(Real(f), del); }

int Open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  auto* pf = reinterpret_cast<PowerFile*>(f);
  pf->real = reinterpret_cast<sqlite3_file*>(pf + 1);
  pf->path = nullptr;
  if (power_off.load()) return SQLITE_CANTOPEN;
  const int rc = base->xOpen(base, name, pf->real, flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  if (name != nullptr) {
    pf->path = new std::string(name);
    std::lock_guard lock(mu);
    FileState& st = files[name];
    // A file first seen now is as durable as it is (it was there before this test's writes).
    if (st.synced_size < 0) st.synced_size = SizeOf(pf->real);
  }
  pf->file.pMethods = &methods;
  return SQLITE_OK;
}

int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
  if (!Powered()) return SQLITE_IOERR_DELETE;
  {
    std::lock_guard lock(mu);
    files.erase(name);
  }
  return base->xDelete(base, name, sync_dir);
}

}  // namespace

void PowerVfs::Install() {
  storage_internal::InstallSqlitePageCache();  // before anything starts SQLite
  base = sqlite3_vfs_find(nullptr);
  methods = sqlite3_io_methods{};
  methods.iVersion = 2;  // with shared memory (WAL), without memory-mapped I/O
  methods.xClose = Close;
  methods.xRead = Read;
  methods.xWrite = Write;
  methods.xTruncate = Truncate;
  methods.xSync = Sync;
  methods.xFileSize = FileSize;
  methods.xLock = Lock;
  methods.xUnlock = Unlock;
  methods.xCheckReservedLock = CheckReservedLock;
  methods.xFileControl = FileControl;
  methods.xSectorSize = SectorSize;
  methods.xDeviceCharacteristics = DeviceCharacteristics;
  methods.xShmMap = ShmMap;
  methods.xShmLock = ShmLock;
  methods.xShmBarrier = ShmBarrier;
  methods.xShmUnmap = ShmUnmap;
  MakeShimVfs(vfs, "sarloop-power", base, static_cast<int>(sizeof(PowerFile)) + base->szOsFile,
              Open);
  vfs.xDelete = Delete;  // forgets what the file held at its last sync
  sqlite3_vfs_register(&vfs, /*makeDflt=*/1);
}

void PowerVfs::CutAfter(int64_t writes) { countdown.store(writes); }
void PowerVfs::CutPower() { power_off.store(true); }
bool PowerVfs::PowerIsOff() { return power_off.load(); }
int64_t PowerVfs::Operations() { return operations.load(); }
void PowerVfs::FailWritesWhile(bool (*full)()) { disk_full.store(full); }

void PowerVfs::SlowSyncsBy(int (*delay)()) { sync_delay.store(delay); }

void PowerVfs::Restore() {
  std::lock_guard lock(mu);
  for (auto& [path, st] : files) {
    const int fd = ::open(path.c_str(), O_RDWR);
    if (fd < 0) continue;
    for (auto it = st.undo.rbegin(); it != st.undo.rend(); ++it) {
      (void)!::pwrite(fd, it->old_bytes.data(), it->old_bytes.size(), it->offset);
    }
    if (st.synced_size >= 0) (void)!::ftruncate(fd, st.synced_size);
    ::close(fd);
    // The WAL index lives in shared memory; a power cut takes it with it.
    ::unlink((path + "-shm").c_str());
  }
  files.clear();
  countdown.store(-1);
  operations.store(0);
  power_off.store(false);
}

}  // namespace sarloop::testing
