// Reading a whole input file that must be a regular file (POSIX).
//
// Opening a FIFO for reading waits until a writer appears, forever if none does, and a device can
// produce endless data: both are refused with a message naming the file. The file is opened with
// O_NONBLOCK (which makes no difference to a regular file) and checked with fstat before any read.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "rodimus/core/error.hpp"

namespace rodimus::io {

/// The bytes of the regular file `path`; rodimus::error naming it (with the system's reason) when
/// it cannot be opened or read, or is not a regular file.
inline std::string read_regular_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw error(path + (S_ISDIR(st.st_mode) ? ": is a directory, not a file"
                                            : ": not a regular file (a FIFO or a device?)"));
  }
  std::string text;
  text.reserve(std::size_t(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ::ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      throw error(path + ": read failed: " + std::strerror(e));
    }
    if (n == 0) break;
    text.append(buf, std::size_t(n));
  }
  ::close(fd);
  return text;
}

} // namespace rodimus::io
