// Launch helpers shared by the CUDA kernels: grid sizes for row-wise and element-wise kernels, the
// launch itself, and the two instructions of an overlapped launch.
//
//   rows_grid(M)                 one CTA per row, rows beyond the grid limit looped by the kernel
//   elements_grid(n, threads)    a grid-stride loop's CTAs for n elements
//   launch_on(be)                the stream and launch mode of a call (cuda<Sm>::launch)
//   launch(on, kernel, grid, block, smem, args...)
//                                every kernel of the library is launched through this (then
//                                RODIMUS_CUDA_TRY(cudaGetLastError()), backend/cuda/cuda.cuh)
//   launch_clustered(on, cluster, kernel, ...)   the same in thread-block clusters (sm_90)
//   wait_for_prior_kernels()     every kernel calls it before it reads anything an earlier
//                                kernel may have written, or writes anything at all
//   let_next_kernel_start()      every kernel calls it right after that wait
//
// Overlapped launches (cuda_launch::overlapped, sm_90 and newer) are CUDA's programmatic dependent
// launch: a kernel launched with the attribute may be scheduled as soon as every CTA of the kernel
// before it has called let_next_kernel_start(), instead of after that kernel has finished; its CTAs
// then run up to wait_for_prior_kernels(), which returns once the earlier kernel has completed and
// its writes are visible. A kernel may do only what depends on no earlier kernel before the wait:
// the GEMV loads its first weights there (weights are never written by a kernel), the SW-SKA
// decode asks L2 for ring rows (prefetch hints, whose addresses come from reads around L1 that
// nothing after the wait reuses: a stale value costs a wasted prefetch, never a result), the
// others wait first. The rule that makes the chain safe: every kernel waits (at least one thread of
// a CTA that stays until the kernel ends), so a kernel completes only after all kernels before it;
// and it lets the next one start only after its own wait, so at most two kernels overlap. Without
// the attribute (cuda_launch::serial, older GPUs, a kernel of another library in between) the wait
// is an instruction that returns at once: the results are the same bits either way.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/core/tensor_view.hpp"

namespace rodimus::detail {

/// Where and how a call's kernels are launched.
struct launch_target {
  cudaStream_t stream = nullptr;
  bool overlapped = false; // programmatic dependent launch (see the top of this file)
};

template <int Sm> launch_target launch_on(const cuda<Sm>& be) noexcept {
  return {be.stream, Sm >= 90 && be.launch == cuda_launch::overlapped};
}

/// Launches kernel(args...) with grid x block threads and smem bytes of dynamic shared memory on
/// on.stream, with the programmatic-serialisation attribute when on.overlapped, in thread-block
/// clusters of `cluster` CTAs along x when cluster > 1 (sm_90; grid.x a multiple of it). Returns
/// the launch's error (also left for cudaGetLastError()).
template <class... Params, class... Args>
cudaError_t launch_clustered(const launch_target& on, unsigned cluster, void (*kernel)(Params...),
                             dim3 grid, dim3 block, std::size_t smem, Args&&... args) noexcept {
  cudaLaunchAttribute attrs[2] = {};
  unsigned n = 0;
  if (on.overlapped) {
    attrs[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[n++].val.programmaticStreamSerializationAllowed = 1;
  }
  if (cluster > 1) {
    attrs[n].id = cudaLaunchAttributeClusterDimension;
    attrs[n].val.clusterDim.x = cluster;
    attrs[n].val.clusterDim.y = 1;
    attrs[n++].val.clusterDim.z = 1;
  }
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = on.stream;
  config.attrs = attrs;
  config.numAttrs = n;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

/// launch_clustered without clusters: what every kernel but a few uses.
template <class... Params, class... Args>
cudaError_t launch(const launch_target& on, void (*kernel)(Params...), dim3 grid, dim3 block,
                   std::size_t smem, Args&&... args) noexcept {
  return launch_clustered(on, 1u, kernel, grid, block, smem, std::forward<Args>(args)...);
}

/// Blocks the calling thread until the kernels launched before this one on the stream have
/// completed and their memory is visible (griddepcontrol.wait; returns at once when the kernel was
/// not launched overlapped, and compiles to nothing before sm_90).
__device__ __forceinline__ void wait_for_prior_kernels() noexcept {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/// Lets the next overlapped kernel on the stream be scheduled once every CTA of this one has called
/// it (griddepcontrol.launch_dependents). It does not publish any memory: the next kernel still
/// waits for this one's completion before it reads.
__device__ __forceinline__ void let_next_kernel_start() noexcept {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/// The prologue of every kernel that has nothing to do before its wait.
__device__ __forceinline__ void begin_after_prior_kernels() noexcept {
  wait_for_prior_kernels();
  let_next_kernel_start();
}

/// Largest grid.x used by the library's kernels: enough CTAs to fill any GPU several times over;
/// kernels loop over the rest (grid-stride), so no size overflows a launch.
constexpr index_t cuda_max_grid = index_t(1) << 16;
/// Largest grid.y used (CUDA's limit is 65535).
constexpr index_t cuda_max_grid_y = 65535;

/// An attribute of the current device (cudaDeviceGetAttribute: a driver query, no synchronisation),
/// or `fallback` where the query fails.
inline int device_attribute(cudaDeviceAttr what, int fallback) noexcept {
  int dev = 0, value = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&value, what, dev) != cudaSuccess) {
    (void)cudaGetLastError(); // not left for a later launch check to report
    return fallback;
  }
  return value > 0 ? value : fallback;
}

/// Streaming multiprocessors of the current device (132 on an H100 SXM / H200; 132 if unknown).
inline index_t device_sm_count() noexcept {
  return index_t(device_attribute(cudaDevAttrMultiProcessorCount, 132));
}

/// The shared memory a CTA of the current device may opt in to, in bytes (0 if unknown).
inline std::size_t device_smem_optin() noexcept {
  return std::size_t(device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
}

/// CTAs for one CTA per row (M >= 1), capped at cuda_max_grid.
inline unsigned rows_grid(index_t M) noexcept {
  return unsigned(M < cuda_max_grid ? (M < 1 ? 1 : M) : cuda_max_grid);
}

/// CTAs of `threads` threads for a grid-stride loop over n elements, capped at cuda_max_grid.
inline unsigned elements_grid(index_t n, int threads) noexcept {
  const index_t ctas = (n + threads - 1) / threads;
  return unsigned(ctas < 1 ? 1 : ctas < cuda_max_grid ? ctas : cuda_max_grid);
}

} // namespace rodimus::detail
