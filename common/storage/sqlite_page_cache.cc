#include "common/storage/sqlite_page_cache.h"

#include <sqlite3.h>

#include <atomic>
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

void Install() {
  sqlite3_pcache_methods2 mine{};
  if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &below) != SQLITE_OK || below.xCreate == nullptr) {
    return;  // SQLite is already in use: its own cache stays
  }
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
  return {installed, parked.load(), high_keys.load(), memstatus_off};
}

}  // namespace sarloop::storage_internal
