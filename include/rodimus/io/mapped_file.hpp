// A read-only memory map of a whole regular file (POSIX), owned RAII. Errors name the file.
// The map is private and read-only; a file truncated by another process while mapped makes reads
// past its new end fault (SIGBUS), as with every memory map: checkpoints must not change in place.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include "rodimus/core/error.hpp"

namespace rodimus::io {

class mapped_file {
public:
  mapped_file() = default;
  explicit mapped_file(const std::string& path) : path_(path) {
    // O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer; fstat rejects it next.
    // It changes nothing for a regular file.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) throw error(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw error(path + ": not a regular file");
    }
    size_ = std::size_t(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        throw error(path + ": mmap failed: " + std::strerror(errno));
      }
      data_ = static_cast<const unsigned char*>(p);
    }
    ::close(fd);
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  mapped_file(mapped_file&& o) noexcept { swap(o); }
  mapped_file& operator=(mapped_file&& o) noexcept {
    if (this != &o) {
      release();
      swap(o);
    }
    return *this;
  }
  ~mapped_file() { release(); }

  const unsigned char* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  const std::string& path() const noexcept { return path_; }

private:
  void swap(mapped_file& o) noexcept {
    std::swap(path_, o.path_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
  }
  void release() noexcept {
    if (data_) ::munmap(const_cast<unsigned char*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }

  std::string path_;
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

} // namespace rodimus::io
