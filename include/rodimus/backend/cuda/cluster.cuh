// Thread-block clusters (sm_90 and newer) in the three operations the library uses, written in PTX
// so that no header pulls CUDA's `cuda::` namespace (cooperative_groups) into a user's scope, where
// `using namespace rodimus;` would make `cuda<90>` ambiguous:
//
//   cluster_rank()                 this CTA's rank in its cluster (%cluster_ctarank)
//   cluster_sync()                 a barrier over every thread of the cluster that also orders
//                                  their shared-memory accesses (release / acquire)
//   cluster_load(p, rank)          the value of the __shared__ variable *p in CTA `rank` of the
//                                  cluster (distributed shared memory: mapa + ld.shared::cluster)
//
// A kernel that uses them is launched with launch_clustered (launch.cuh). Compiled for an older
// GPU they trap: a launch with clusters fails there before any kernel runs.
#pragma once

#include <cstdint>

namespace rodimus::detail {

__device__ __forceinline__ unsigned cluster_rank() noexcept {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
  return r;
#else
  __trap();
  return 0;
#endif
}

__device__ __forceinline__ void cluster_sync() noexcept {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.release.aligned;\n\t"
               "barrier.cluster.wait.acquire.aligned;" ::
                   : "memory");
#else
  __trap();
#endif
}

__device__ __forceinline__ std::uint64_t cluster_load(const std::uint64_t* p,
                                                      unsigned rank) noexcept {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const auto local = static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
  std::uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(local), "r"(rank));
  std::uint64_t v;
  asm volatile("ld.shared::cluster.u64 %0, [%1];" : "=l"(v) : "r"(remote) : "memory");
  return v;
#else
  (void)p;
  (void)rank;
  __trap();
  return 0;
#endif
}

} // namespace rodimus::detail
