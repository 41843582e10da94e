// DDTS on the CUDA backend (math and shapes in rodimus/primitives/ddts.hpp), f32 throughout:
//
//   gate = ddts_gate(sel + b_sel, tmp + b_tau)    softplus (threshold 20), sigmoid, gamma^tau
//   log_decay = gate.log_decay = -(gamma * tau)
//   k_hat = (k / max(||k||_2, normalize_eps)) * gate.beta
//
// The gate is primitives/ddts.hpp's ddts_gate on float (the same formula as the scalar reference
// and the CPU backend; CUDA's expf/log1pf/powf are within 2 ulp of the host's). Kernel: one row per
// thread group (backend/cuda/reduce.cuh: a warp per row up to 512 key channels, the usual case,
// N = mem_size = 64; a CTA of 256 threads above): pass 1 sums k^2 over the row (f32), the group
// reduces, pass 2 computes the gate of each channel and writes log_decay and k_hat (coalesced
// along N). Any strides; the bias is optional.
#pragma once

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/backend/cuda/reduce.cuh"
#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/ddts.hpp"

namespace rodimus {

namespace detail {

template <class Rows, class Act>
__global__ void __launch_bounds__(Rows::threads) ddts_kernel(const ddts_args<Act> a) {
  begin_after_prior_kernels();
  __shared__ float scratch[32];
  const index_t M = a.gate_preact.shape[0], N = a.gate_preact.shape[1] / 2;
  const index_t lane = Rows::lane();
  for (index_t m = Rows::first_row(); m < M; m += Rows::row_stride()) {
    float ss = 0.0f;
    for (index_t n = lane; n < N; n += Rows::threads_per_row) {
      const float kv = load_as<float>(a.k(m, n));
      ss += kv * kv;
    }
    ss = Rows::sum(ss, scratch);
    const float norm = sqrtf(ss);
    const float denom = ddts_key_denominator(norm, a.normalize_eps);
    for (index_t n = lane; n < N; n += Rows::threads_per_row) {
      ddts_store(a, m, n, denom);
    }
  }
}

} // namespace detail

/// ddts on the tag's stream; every view in device memory.
template <int Sm, class Act>
[[nodiscard]] status ddts(const cuda<Sm>& be, const ddts_args<Act>& a) noexcept {
  RODIMUS_TRY(ddts_check(a));
  const index_t M = a.gate_preact.shape[0], N = a.gate_preact.shape[1] / 2;
  if (M == 0) return status::success();
  using P = detail::row_policy;
  if (N <= P::warp_row_max) {
    using R = P::warp_rows;
    RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be), detail::ddts_kernel<R, Act>, R::grid(M),
                                    R::threads, 0, a));
  } else {
    using R = P::cta_rows;
    RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be), detail::ddts_kernel<R, Act>, R::grid(M),
                                    R::threads, 0, a));
  }
  RODIMUS_CUDA_TRY(cudaGetLastError());
  return status::success();
}

} // namespace rodimus
