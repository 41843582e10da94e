// Writing an output file all at once or not at all (POSIX).
//
// atomic_file writes into a new temporary file in the destination's folder and, on commit(),
// flushes it to the disk and renames it over the destination. Until commit() the old file is
// untouched; a failed or abandoned write removes the temporary file and leaves the old one as it
// was, and two processes writing the same path each replace it whole (the last rename wins), so
// nobody ever reads a mix of both. Every write, the flush and the close are checked; errors are
// rodimus::error naming the file and the system's reason.
//
// The destination must be a regular file or not exist yet: a FIFO, a device or a folder is refused
// before anything is written (a rename would replace the device node, and opening a FIFO waits
// for a reader). A symbolic link is followed: its target is replaced.
//
//   io::atomic_file f(path);         // creates path's temporary sibling
//   f.write(bytes, n);               // as often as needed
//   f.commit();                      // now path holds exactly what was written
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "rodimus/core/error.hpp"

namespace rodimus::io {

class atomic_file {
public:
  explicit atomic_file(const std::string& path) : path_(destination(path)) {
    // A name no other writer uses: the process id and a per-process counter; O_EXCL makes sure
    // the file is ours (a leftover of a crashed run with a reused id just takes the next name).
    static std::atomic<std::uint64_t> counter{0};
    for (int attempt = 0; fd_ < 0; ++attempt) {
      temp_ = path_ + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
      fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ < 0 && (errno != EEXIST || attempt > 100))
        throw error(path_ + ": cannot write the output there: " + std::strerror(errno));
    }
  }
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;
  /// Without commit(): the temporary file is removed and the destination left as it was.
  ~atomic_file() { abandon(); }

  /// The destination (a symbolic link resolved to its target).
  const std::string& path() const noexcept { return path_; }

  void write(const void* data, std::size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    while (bytes > 0) {
      const ::ssize_t n = ::write(fd_, p, bytes);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n == 0) errno = EIO; // no progress and no reason given
        fail("write failed");
      }
      p += n;
      bytes -= std::size_t(n);
    }
  }
  void write(const std::string& text) { write(text.data(), text.size()); }

  /// Flush to the disk, close and rename over the destination.
  void commit() {
    if (::fsync(fd_) != 0 && errno != EINVAL) fail("write failed"); // EINVAL: cannot be synced
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {
      const int e = errno;
      ::unlink(temp_.c_str());
      throw error(path_ + ": write failed: " + std::strerror(e));
    }
    if (::rename(temp_.c_str(), path_.c_str()) != 0) {
      const int e = errno;
      ::unlink(temp_.c_str());
      throw error(path_ + ": cannot replace the file: " + std::strerror(e));
    }
  }

private:
  /// `path` with a symbolic link resolved; throws when it exists and is not a regular file.
  static std::string destination(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path p = path;
    if (fs::is_symlink(p, ec)) {
      const fs::path target = fs::canonical(p, ec);
      if (!ec) p = target;
    }
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
      throw error(path + ": cannot write the output there: " +
                  (S_ISDIR(st.st_mode) ? "it is a directory" : "it is not a regular file"));
    return p.string();
  }

  [[noreturn]] void fail(const char* what) {
    const int e = errno;
    abandon();
    throw error(path_ + ": " + what + ": " + std::strerror(e));
  }

  void abandon() noexcept {
    if (fd_ < 0) return;
    ::close(fd_);
    ::unlink(temp_.c_str());
    fd_ = -1;
  }

  std::string path_;
  std::string temp_;
  int fd_ = -1;
};

/// Replace `path` with `bytes` bytes at `data`, all at once (see atomic_file).
inline void write_file_atomically(const std::string& path, const void* data, std::size_t bytes) {
  atomic_file f(path);
  f.write(data, bytes);
  f.commit();
}

} // namespace rodimus::io
