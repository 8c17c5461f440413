// The writer connection's VFS: the write-ahead log goes to the disk in one write per sync instead
// of two per page. SQLite writes each WAL frame as two pwrite calls (its 24-byte header, then the
// page), so a commit of 20 pages made 40 system calls before its fdatasync; on this project's
// virtual machines those calls cost more than the sync (about 0.30 ms of CPU against 0.05 for the
// same bytes in one call). This VFS keeps the writes to a WAL file that follow one another in a
// buffer and hands them down together when SQLite syncs, reads, truncates, asks the size of or
// closes the file, or writes elsewhere in it.
//
// Why that is safe only for a connection in synchronous=FULL: another connection (a reader, the
// checkpointer) reads committed frames from the file once the WAL index says they are there, and
// SQLite updates the index only after the commit's sync, when the buffer has gone down. Under
// synchronous=NORMAL a commit does not sync, so storage_sqlite.cc opens such a connection with the
// default VFS. What was buffered and not synced was never durable: a crash loses only frames of a
// transaction that had not committed. A write error surfaces at the sync, which fails the commit.
//
// Writes are held only where the file claims powersafe overwrite (the unix VFS's default): without
// it SQLite pads each commit to a sector boundary with frames it writes after the sync and counts
// in the WAL index, so they must reach the file as they are written. The fault suite's power-loss
// VFS claims nothing, so under it every write goes straight down.
//
// Every other file, and every other call, goes to the VFS that is the default when the file is
// opened (a test's fault-injecting VFS stays underneath).
#ifndef SARLOOP_COMMON_STORAGE_STORAGE_WAL_VFS_H_
#define SARLOOP_COMMON_STORAGE_STORAGE_WAL_VFS_H_

#include <cstdint>

namespace sarloop::storage_internal {

// The VFS name to open a synchronous=FULL writer connection with (registered on first use, never
// as the default).
const char* CoalescingWalVfs();

// Writes to WAL files opened through it since the process started: as SQLite made them, and as
// they went down to the file.
struct WalWriteCounts {
  int64_t from_sqlite = 0;
  int64_t to_file = 0;
};
WalWriteCounts CoalescingWalWrites();

}  // namespace sarloop::storage_internal

#endif  // SARLOOP_COMMON_STORAGE_STORAGE_WAL_VFS_H_
