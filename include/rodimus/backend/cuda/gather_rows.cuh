// The row gather on the CUDA backend (math and shapes in rodimus/primitives/gather_rows.hpp):
//
//   out[i, :] = in[rows[i], :], or zeros for rows[i] == -1
//
// One CTA per output row (rows beyond the grid looped), its threads along D (coalesced); the row
// index is read once per row. rows live in device memory, so only the shape checks run on the
// host: an entry outside [-1, M) writes a row of NaN and reads nothing from `in` (the runner builds
// the rows on the host).
#pragma once

#include <cmath>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/primitives/gather_rows.hpp"

namespace rodimus {

namespace detail {

/// Sm: only to make the kernel a template (one definition across translation units).
template <int Sm> __global__ void gather_rows_kernel(const gather_rows_args a) {
  begin_after_prior_kernels();
  const index_t R = a.num_rows, M = a.in.shape[0], D = a.in.shape[1];
  for (index_t i = blockIdx.x; i < R; i += gridDim.x) {
    const std::int64_t r = a.rows[i];
    if (r >= 0 && r < M) {
      for (index_t d = threadIdx.x; d < D; d += blockDim.x)
        a.out(i, d) = a.in(r, d);
    } else {
      const float fill = r == -1 ? 0.0f : NAN;
      for (index_t d = threadIdx.x; d < D; d += blockDim.x)
        a.out(i, d) = fill;
    }
  }
}

} // namespace detail

template <int Sm>
[[nodiscard]] status gather_rows(const cuda<Sm>& be, const gather_rows_args& a) noexcept {
  RODIMUS_TRY(gather_rows_check(a));
  if (a.out.numel() == 0) return status::success();
  constexpr int threads = 256;
  RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be), detail::gather_rows_kernel<Sm>,
                                  detail::rows_grid(a.num_rows), threads, 0, a));
  return status::success();
}

} // namespace rodimus
