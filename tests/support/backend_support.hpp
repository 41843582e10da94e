// Test bodies written once for every backend (Kokkos / ggml style): the body builds its inputs as
// host vectors, puts copies into the backend's memory, runs the backend, gets the outputs back and
// compares them with the scalar reference run on the host vectors. On the host backends the copies
// are plain host memory; on CUDA they are device memory (backend/cuda/memory.cuh).
//
//   test::backend_arrays<Backend> mem(be);
//   const float* dx = mem.put(x);          // a copy of x in the backend's memory
//   float* dy = mem.put(y);                // poisoned y travels too, so unwritten outputs show
//   ... run the primitive on views over dx, dy ...
//   mem.get(y, dy);                        // y <- the backend's result
//   test::backend_workspace<Backend> ws(be, bytes);   // a workspace in the backend's memory
//
// A body is stamped per backend: tests/cases/<primitive>_cases.hpp holds the templates,
// tests/test_cpu_<primitive>.cpp stamps them for the xsimd archs and tests/cuda/test_<primitive>.cu
// for cuda<90> (skipping with a message where no GPU is present).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "rodimus/backend/cpu/memory.hpp"
#include "rodimus/core/workspace.hpp"
#include "support/test_support.hpp"

namespace rodimus::test {

/// Copies of host vectors in the memory of `Backend`, alive as long as this object.
template <class Backend> class backend_arrays {
public:
  explicit backend_arrays(const Backend& be) : be_(be) {}

  const Backend& backend() const noexcept { return be_; }

  /// A copy of `host` in the backend's memory (non-null even when `host` is empty).
  template <class T> T* put(const std::vector<T>& host) {
    const std::size_t bytes = host.size() * sizeof(T);
    blocks_.emplace_back(be_, bytes == 0 ? sizeof(T) : bytes, "test array");
    T* p = blocks_.back().template as<T>();
    REQUIRE(copy_to_backend(be_, p, host.data(), bytes).ok());
    return p;
  }
  /// host <- the host.size() elements at `p` (backend memory from put).
  template <class T> void get(std::vector<T>& host, const T* p) const {
    REQUIRE(copy_to_host(be_, host.data(), p, host.size() * sizeof(T)).ok());
  }
  /// Overwrite the backend copy `p` with `host` (e.g. to reset a state between runs).
  template <class T> void set(T* p, const std::vector<T>& host) const {
    REQUIRE(copy_to_backend(be_, p, host.data(), host.size() * sizeof(T)).ok());
  }

private:
  Backend be_;
  std::vector<backend_buffer<Backend>> blocks_;
};

/// `bytes` of workspace in the backend's memory. The base is one byte past the allocation, never
/// aligned, so the alignment slack that *_workspace_bytes includes is exercised.
template <class Backend> class backend_workspace {
public:
  backend_workspace(const Backend& be, std::size_t bytes)
      : buf_(be, bytes + workspace::alignment + 1, "test workspace") {}
  workspace get() const { return workspace{buf_.data() + 1, buf_.size() - 1, 0}; }

private:
  backend_buffer<Backend> buf_;
};

} // namespace rodimus::test
