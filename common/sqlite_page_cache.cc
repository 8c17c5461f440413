#include "common/sqlite_page_cache.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace sarloop::storage_internal {
namespace {

// SQLite's PENDING_BYTE (fixed unless a test of SQLite's own moves it); the page holding it is
// never a database page, and balance_nonroot parks pages under its number.
constexpr unsigned kPendingByte = 0x40000000;

sqlite3_pcache_methods2 below;  // SQLite's default, as sqlite3_config returned it
bool installed = false;
bool memstatus_off = false;
std::atomic<int64_t> parked{0};
std::atomic<int64_t> high_keys{0};

struct Cache {
  sqlite3_pcache* below;
  unsigned parking;  // the pending-byte page's number at this cache's page size
};

Cache* Of(sqlite3_pcache* p) { return reinterpret_cast<Cache*>(p); }

// The number the default cache holds a page under.
unsigned Below(const Cache* c, unsigned key) {
  const unsigned below_key = key == c->parking ? 0 : key;
  if (below_key >= c->parking) high_keys.fetch_add(1, std::memory_order_relaxed);
  return below_key;
}

int Init(void*) { return below.xInit ? below.xInit(below.pArg) : SQLITE_OK; }
void Shutdown(void*) {
  if (below.xShutdown) below.xShutdown(below.pArg);
}

sqlite3_pcache* Create(int page_size, int extra, int purgeable) {
  sqlite3_pcache* b = below.xCreate(page_size, extra, purgeable);
  if (b == nullptr) return nullptr;
  auto* c = static_cast<Cache*>(sqlite3_malloc(sizeof(Cache)));
  if (c == nullptr) {
    below.xDestroy(b);
    return nullptr;
  }
  c->below = b;
  c->parking = kPendingByte / static_cast<unsigned>(page_size) + 1;
  return reinterpret_cast<sqlite3_pcache*>(c);
}

void Cachesize(sqlite3_pcache* p, int n) { below.xCachesize(Of(p)->below, n); }
int Pagecount(sqlite3_pcache* p) { return below.xPagecount(Of(p)->below); }

sqlite3_pcache_page* Fetch(sqlite3_pcache* p, unsigned key, int create) {
  return below.xFetch(Of(p)->below, Below(Of(p), key), create);
}

void Unpin(sqlite3_pcache* p, sqlite3_pcache_page* page, int discard) {
  below.xUnpin(Of(p)->below, page, discard);
}

void Rekey(sqlite3_pcache* p, sqlite3_pcache_page* page, unsigned old_key, unsigned new_key) {
  Cache* c = Of(p);
  if (new_key == c->parking) parked.fetch_add(1, std::memory_order_relaxed);
  below.xRekey(c->below, page, Below(c, old_key), Below(c, new_key));
}

// Not translated: a limit at the parking number (a database of exactly that many pages) must
// drop every page past it, and a parked page is never left parked across a truncation.
void Truncate(sqlite3_pcache* p, unsigned limit) { below.xTruncate(Of(p)->below, limit); }

void Destroy(sqlite3_pcache* p) {
  below.xDestroy(Of(p)->below);
  sqlite3_free(p);
}

void Shrink(sqlite3_pcache* p) { below.xShrink(Of(p)->below); }

// --- SQLite's memory allocator -------------------------------------------------------------
//
// SQLite asks for page-sized buffers and scratch areas of a few KiB at every b-tree split and for
// every large value it builds; glibc serves blocks past its thread cache's sizes (1 KiB) from
// bins it must first sort, and in a profile of the chain at its peak 4.2% of all samples were
// glibc's allocator working for SQLite. Blocks of 1 to 32 KiB are now rounded up to one of five
// sizes, and each thread keeps a few freed blocks of each size for the next request. Smaller and
// larger blocks go to malloc as before. Every block carries its size and class in a 16-byte
// header (SQLite asks a block's size back, and needs 8-byte alignment).

constexpr size_t kHeader = 16;
constexpr int kClasses = 5;  // usable sizes 2, 4, 8, 16 and 32 KiB
constexpr size_t kSmallest = 2048;
constexpr int kKeptPerClass = 4;

struct Header {
  uint64_t usable;
  int64_t size_class;  // -1: not one of the classes
};
static_assert(sizeof(Header) == kHeader);

int ClassOf(size_t n) {
  if (n <= 1024 || n > (kSmallest << (kClasses - 1))) return -1;
  int c = 0;
  while ((kSmallest << c) < n) ++c;
  return c;
}

Header* HeaderOf(void* p) { return reinterpret_cast<Header*>(static_cast<char*>(p) - kHeader); }

// Readable while the thread exits, after its cache is gone (SQLite may free memory from another
// thread-local's destructor then).
thread_local bool t_cache_gone = false;

struct ThreadBlocks {
  void* blocks[kClasses][kKeptPerClass];
  int count[kClasses] = {};
  ~ThreadBlocks() {
    for (int c = 0; c < kClasses; ++c) {
      for (int i = 0; i < count[c]; ++i) std::free(blocks[c][i]);
    }
    t_cache_gone = true;
  }
};

ThreadBlocks* MyBlocks() {
  if (t_cache_gone) return nullptr;
  thread_local ThreadBlocks blocks;
  return &blocks;
}

bool allocator_installed = false;

void* Malloc(int n) {
  if (n <= 0) return nullptr;
  const size_t want = static_cast<size_t>(n);
  const int c = ClassOf(want);
  void* base = nullptr;
  size_t usable = (want + 7) & ~size_t{7};
  if (c >= 0) {
    usable = kSmallest << c;
    if (ThreadBlocks* mine = MyBlocks(); mine != nullptr && mine->count[c] > 0) {
      base = mine->blocks[c][--mine->count[c]];
    }
  }
  if (base == nullptr) base = std::malloc(kHeader + usable);
  if (base == nullptr) return nullptr;
  auto* h = static_cast<Header*>(base);
  h->usable = usable;
  h->size_class = c;
  return static_cast<char*>(base) + kHeader;
}

void Free(void* p) {
  if (p == nullptr) return;
  Header* h = HeaderOf(p);
  const int64_t c = h->size_class;
  if (c >= 0) {
    if (ThreadBlocks* mine = MyBlocks(); mine != nullptr && mine->count[c] < kKeptPerClass) {
      mine->blocks[c][mine->count[c]++] = h;
      return;
    }
  }
  std::free(h);
}

int Size(void* p) { return p == nullptr ? 0 : static_cast<int>(HeaderOf(p)->usable); }

void* Realloc(void* p, int n) {
  if (p == nullptr) return Malloc(n);
  if (n <= 0) {
    Free(p);
    return nullptr;
  }
  Header* h = HeaderOf(p);
  const size_t want = static_cast<size_t>(n);
  const int c = ClassOf(want);
  if (c >= 0 && c == h->size_class) return p;  // the block is already that class's size
  if (c < 0 && h->size_class < 0) {
    const size_t usable = (want + 7) & ~size_t{7};
    void* base = std::realloc(h, kHeader + usable);
    if (base == nullptr) return nullptr;
    static_cast<Header*>(base)->usable = usable;
    return static_cast<char*>(base) + kHeader;
  }
  void* moved = Malloc(n);
  if (moved == nullptr) return nullptr;
  std::memcpy(moved, p, std::min<size_t>(h->usable, want));
  Free(p);
  return moved;
}

int Roundup(int n) {
  const int c = ClassOf(static_cast<size_t>(n));
  return c >= 0 ? static_cast<int>(kSmallest << c) : (n + 7) & ~7;
}

int MemInit(void*) { return SQLITE_OK; }
void MemShutdown(void*) {}

void Install() {
  sqlite3_pcache_methods2 mine{};
  if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &below) != SQLITE_OK || below.xCreate == nullptr) {
    return;  // SQLite is already in use: its own cache stays
  }
  static const sqlite3_mem_methods kMemory{Malloc,  Free,    Realloc,     Size,
                                           Roundup, MemInit, MemShutdown, nullptr};
  allocator_installed = sqlite3_config(SQLITE_CONFIG_MALLOC, &kMemory) == SQLITE_OK;
  mine.iVersion = 1;
  mine.pArg = nullptr;
  mine.xInit = Init;
  mine.xShutdown = Shutdown;
  mine.xCreate = Create;
  mine.xCachesize = Cachesize;
  mine.xPagecount = Pagecount;
  mine.xFetch = Fetch;
  mine.xUnpin = Unpin;
  mine.xRekey = Rekey;
  mine.xTruncate = Truncate;
  mine.xDestroy = Destroy;
  mine.xShrink = Shrink;
  installed = sqlite3_config(SQLITE_CONFIG_PCACHE2, &mine) == SQLITE_OK;
  // No memory statistics: nothing here reads them (sqlite3_memory_used, a soft heap limit), and
  // keeping them takes a process-wide mutex and a size lookup in every sqlite3_malloc and
  // sqlite3_free, from every connection's thread (the mutex alone was 0.7% of the chain's samples
  // at its peak).
  memstatus_off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
}

}  // namespace

void InstallSqlitePageCache() {
  static std::once_flag once;
  std::call_once(once, Install);
}

PageCacheCounts SqlitePageCacheCounts() {
  return {installed, parked.load(), high_keys.load(), memstatus_off, allocator_installed};
}

}  // namespace sarloop::storage_internal
