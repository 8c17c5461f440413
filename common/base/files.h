// Files that survive a crash or a power loss as written: data synced before it is relied on, and
// the directory synced after a name is made or changed, since a new name lives in the directory's
// own blocks and is lost with them.
#ifndef SARLOOP_COMMON_BASE_FILES_H_
#define SARLOOP_COMMON_BASE_FILES_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"

namespace sarloop {

// Opens `path` with `flags` (O_WRONLY and O_CLOEXEC added; O_CREAT with `mode`), writes `data`
// whole and syncs it. With O_CREAT, also syncs the directory, so a file new here keeps its name.
absl::Status WriteFileSynced(const std::string& path, const std::string& data, int flags,
                             mode_t mode);

// Syncs the directory that holds `path` (its name, not its contents).
absl::Status SyncDirectoryOf(const std::string& path);

// Replaces `path` with `data` all at once: written and synced beside it, renamed over it, and the
// directory synced, so after a crash `path` holds the old contents or the new, never part.
absl::Status ReplaceFileSynced(const std::string& path, const std::string& data, mode_t mode);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_BASE_FILES_H_
