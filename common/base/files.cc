#include "common/base/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace sarloop {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

absl::Status SyncDirectoryOf(const std::string& path) {
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  const std::string name = dir.empty() ? "." : dir.string();
  const int fd = ::open(name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", name);
  const int rc = ::fsync(fd);
  const absl::Status status = rc == 0 ? absl::OkStatus() : Errno("cannot sync", name);
  ::close(fd);
  return status;
}

absl::Status WriteFileSynced(const std::string& path, const std::string& data, int flags,
                             mode_t mode) {
  const int fd = ::open(path.c_str(), flags | O_WRONLY | O_CLOEXEC, mode);
  if (fd < 0) return Errno("cannot open", path);
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const absl::Status status = Errno("cannot write", path);
      ::close(fd);
      return status;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const absl::Status status = Errno("cannot sync", path);
    ::close(fd);
    return status;
  }
  ::close(fd);
  return (flags & O_CREAT) != 0 ? SyncDirectoryOf(path) : absl::OkStatus();
}

absl::Status ReplaceFileSynced(const std::string& path, const std::string& data, mode_t mode) {
  const std::string tmp = path + ".tmp";
  absl::Status status = WriteFileSynced(tmp, data, O_CREAT | O_TRUNC, mode);
  if (status.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    status = Errno("cannot replace", path);
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  return SyncDirectoryOf(path);
}

}  // namespace sarloop
