// Embedding lookup on the CUDA backend (math and shapes in rodimus/primitives/embedding.hpp):
//
//   out[m, :] = f32(table[ids[m], :]) * scale         (the f32 product: the reference's bits)
//
// One CTA per output row (rows beyond the grid looped), its threads along D (coalesced); the id is
// read once per row. ids live in device memory, so only the shape checks run on the host: an id
// outside [0, V) writes a row of NaN and reads nothing from the table (the runner checks the ids
// on the host before uploading them).
#pragma once

#include <cmath>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/embedding.hpp"

namespace rodimus {

namespace detail {

template <class Table> __global__ void embedding_kernel(const embedding_args<Table> a) {
  begin_after_prior_kernels();
  const index_t M = a.num_ids, V = a.table.shape[0], D = a.table.shape[1];
  for (index_t m = blockIdx.x; m < M; m += gridDim.x) {
    const std::int64_t id = a.ids[m];
    if (id >= 0 && id < V) {
      for (index_t d = threadIdx.x; d < D; d += blockDim.x)
        a.out(m, d) = load_as<float>(a.table(id, d)) * a.scale;
    } else {
      for (index_t d = threadIdx.x; d < D; d += blockDim.x)
        a.out(m, d) = NAN;
    }
  }
}

} // namespace detail

template <int Sm, class Table>
[[nodiscard]] status embedding(const cuda<Sm>& be, const embedding_args<Table>& a) noexcept {
  RODIMUS_TRY(embedding_check(a));
  if (a.out.numel() == 0) return status::success();
  constexpr int threads = 256;
  RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be), detail::embedding_kernel<Table>,
                                  detail::rows_grid(a.num_ids), threads, 0, a));
  return status::success();
}

} // namespace rodimus
