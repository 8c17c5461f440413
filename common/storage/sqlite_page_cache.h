// SQLite's own page cache, with one page number kept out of it.
//
// When a b-tree page splits, SQLite renumbers the new pages so they lie in ascending order, and
// to swap two of them it parks one for a moment under the number of the pending-byte page
// (262,145 with 4 KiB pages), which no real page ever has. The default page cache remembers the
// largest number it has held, and each commit then drops every page past the database's end; with
// that largest number far past the end, dropping them is a walk over every page in the cache. The
// writer keeps up to 64 MiB cached, so a commit after a split walked up to 16,384 pages: 5% of
// the whole chain's CPU at light load (a profile, and a probe on that walk firing on about a
// third of all commits; README, performance). This cache hands every call to SQLite's default
// and parks that page under number 0 instead, which SQLite never uses, so the largest number the
// default cache sees stays the database's own.
#ifndef SARLOOP_COMMON_STORAGE_SQLITE_PAGE_CACHE_H_
#define SARLOOP_COMMON_STORAGE_SQLITE_PAGE_CACHE_H_

#include <cstdint>

namespace sarloop::storage_internal {

// Installs the cache for the whole process, once, and turns SQLite's memory statistics off. It
// must come before SQLite is first used (sqlite3_config's rule), so every path that opens a
// database or registers a VFS calls it first; called later, SQLite's defaults stay and the counts
// say so.
void InstallSqlitePageCache();

struct PageCacheCounts {
  bool installed = false;
  int64_t parked = 0;  // pages parked during a split, since the process started
  // Page numbers at or past the pending-byte page's handed to SQLite's default cache: 0 unless
  // a database holds a gigabyte or more.
  int64_t high_keys_below = 0;
  // SQLite keeps no memory statistics (SQLITE_CONFIG_MEMSTATUS).
  bool memory_statistics_off = false;
};
PageCacheCounts SqlitePageCacheCounts();

}  // namespace sarloop::storage_internal

#endif  // SARLOOP_COMMON_STORAGE_SQLITE_PAGE_CACHE_H_
