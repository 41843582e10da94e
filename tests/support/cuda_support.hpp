// Shared pieces of the CUDA tests: whether a device is present (the tests skip with a message
// where none is, so CI, which has no GPU, compiles and runs them), the backend tag they use, and
// a stream + context owned for the whole test binary.
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <string>

#include "rodimus/backend/cuda/context.cuh"
#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/memory.cuh"
#include "support/test_support.hpp"

namespace rodimus::test {

/// True when a CUDA device can be used; otherwise the calling test prints why and should return.
inline bool cuda_device_present() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    (void)cudaGetLastError();
    const std::string why = e != cudaSuccess ? cudaGetErrorString(e) : "0 devices";
    MESSAGE("skipped: no CUDA device (" << why << ")");
    return false;
  }
  return true;
}

/// The tag every CUDA test runs on (a non-default stream, so nothing relies on the legacy stream's
/// implicit synchronisation).
inline cuda<90> cuda_backend() {
  static cudaStream_t stream = [] {
    cudaStream_t s = nullptr;
    REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
    return s;
  }();
  cuda<90> be;
  be.stream = stream;
  return be;
}

/// A cuda_context (cuBLAS handle and workspace) on cuda_backend()'s stream, made on first use and
/// shared by the tests of one binary, destroyed at exit (compute-sanitizer's leak check counts
/// what is not freed).
inline cuda_context*& cuda_test_context_slot() {
  static cuda_context* ctx = nullptr;
  return ctx;
}
inline cuda_context& cuda_test_context() {
  if (!cuda_test_context_slot()) {
    cuda_test_context_slot() = new cuda_context(cuda_backend().stream);
    // Registered after the CUDA runtime's own exit handler (the constructor initialised it), so
    // it runs first: cuBLAS and the workspace are freed while the runtime is still up.
    std::atexit([] {
      delete cuda_test_context_slot();
      cuda_test_context_slot() = nullptr;
    });
  }
  return *cuda_test_context_slot();
}

/// cuda_backend() with cuda_test_context(): the tag for calls that need library handles (linear).
inline cuda<90> cuda_backend_with_context() {
  cuda<90> be = cuda_backend();
  be.context = &cuda_test_context();
  return be;
}

} // namespace rodimus::test

/// Return from the current test (with a message) where no CUDA device is present.
#define RODIMUS_REQUIRE_CUDA_DEVICE()                                                              \
  do {                                                                                             \
    if (!::rodimus::test::cuda_device_present()) return;                                           \
  } while (0)
