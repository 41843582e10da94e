// Launch helpers shared by the CUDA kernels: grid sizes for row-wise and element-wise kernels, and
// the check after a launch.
//
//   rows_grid(M)                 one CTA per row, rows beyond the grid limit looped by the kernel
//   elements_grid(n, threads)    a grid-stride loop's CTAs for n elements
//   RODIMUS_CUDA_TRY(cudaGetLastError()) after every launch (backend/cuda/cuda.cuh)
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "rodimus/core/tensor_view.hpp"

namespace rodimus::detail {

/// Largest grid.x used by the library's kernels: enough CTAs to fill any GPU several times over;
/// kernels loop over the rest (grid-stride), so no size overflows a launch.
constexpr index_t cuda_max_grid = index_t(1) << 16;

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
