// Rotary embedding (NeoX rotate-half) on the CUDA backend, in place (math and shapes in
// rodimus/primitives/rotary.hpp):
//
//   theta_j = 1 / base^(2j / r) (f32),  angle = f32(p) * theta_j,  c, s = Act(cos), Act(sin)
//   x'_j = x_j c - x_{j+half} s,  x'_{j+half} = x_j s + x_{j+half} c     (f32), j < half = r / 2
//
// x, position_offset and cu_seqlens are device memory. Only the shape checks run (rotary_check);
// the contents of cu_seqlens and position_offset cannot be read on the host, so they are the
// caller's to get right (the model runner validates them on the host). The kernel stays in bounds
// for any contents: a token's sequence is found by a binary search over cu_seqlens[0 .. N], tokens
// that no [cu[n], cu[n+1]) covers are left as they are, and a negative offset only gives a
// negative angle.
//
// Kernel: a token per group of `lanes` threads (32..256, the smallest power of two >= half, so
// short heads do not idle most of a CTA), 256 threads per CTA, tokens grid-strided. Each thread
// owns channel pairs j = lane, lane + lanes, ...: it computes its (c, s) once per token and
// rotates that pair in every head (accesses along j are coalesced). theta is the host's:
// computed on the host with the reference's expression (the device's powf may differ by an ulp,
// which at position 10^4 moves the angle by ~10^-3) and passed with the launch for j < 512
// (2 KiB of parameters, copied to shared memory); pairs beyond 512 (heads wider than 1024
// rotated channels, in no release) compute it on the device in f64 rounded to f32, which equals
// the host's powf except in rare near-tie cases.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/packed_sequences.hpp"
#include "rodimus/primitives/rotary.hpp"

namespace rodimus {

namespace detail {

struct rotary_policy {
  static constexpr int threads = 256;       // per CTA
  static constexpr int table_entries = 512; // theta_j computed on the host for j < this
  static constexpr int heads_unroll = 8;    // heads whose loads go out together
};

/// theta_j for j < rotary_policy::table_entries, computed on the host.
struct rotary_theta_table {
  float v[rotary_policy::table_entries];
};

/// The sequence of token (b, t): its index n and first token `begin`; false when no sequence
/// covers the token (only with malformed cu_seqlens). Reads cu_seqlens[0 .. N] at most.
template <class Act>
__device__ inline bool rotary_token_sequence(const rotary_args<Act>& a, index_t b, index_t t,
                                             index_t& n, index_t& begin) noexcept {
  if (!a.cu_seqlens) {
    n = b;
    begin = 0;
    return true;
  }
  const std::int64_t* cu = a.cu_seqlens;
  const index_t N = index_t(a.num_seqs);
  if (N <= 0 || t < cu[0]) return false;
  index_t lo = 0, hi = N - 1; // the last sequence whose start is <= t
  while (lo < hi) {
    const index_t mid = lo + (hi - lo + 1) / 2;
    if (cu[mid] <= t)
      lo = mid;
    else
      hi = mid - 1;
  }
  if (t >= cu[lo + 1]) return false;
  n = lo;
  begin = index_t(cu[lo]);
  return true;
}

template <class Act>
__global__ void __launch_bounds__(rotary_policy::threads)
    rotary_kernel(const rotary_args<Act> a, const rotary_theta_table table, const int lanes) {
  begin_after_prior_kernels();
  __shared__ float theta_s[rotary_policy::table_entries];
  const index_t r = rotary_channels(a), half = r / 2;
  const index_t tabled = half < rotary_policy::table_entries ? half : rotary_policy::table_entries;
  for (index_t j = threadIdx.x; j < tabled; j += blockDim.x)
    theta_s[j] = table.v[j];
  __syncthreads();

  const index_t T = a.x.shape[1], H = a.x.shape[2], tokens = a.x.shape[0] * T;
  const index_t groups = blockDim.x / lanes;
  const index_t lane = threadIdx.x % lanes;
  for (index_t tok = index_t(blockIdx.x) * groups + threadIdx.x / lanes; tok < tokens;
       tok += index_t(gridDim.x) * groups) {
    const index_t b = tok / T, t = tok % T;
    index_t n = 0, begin = 0;
    if (!rotary_token_sequence(a, b, t, n, begin)) continue;
    const index_t offset = a.position_offset ? index_t(a.position_offset[n]) : 0;
    const index_t p = offset + (t - begin);
    for (index_t j = lane; j < half; j += lanes) {
      const float theta = j < tabled
                              ? theta_s[j]
                              : 1.0f / float(pow(double(a.base), double(float(2 * j) / float(r))));
      float sn, cs;
      sincosf(rotary_angle(p, theta), &sn, &cs);
      const float c = rotary_table_value<Act>(cs), s = rotary_table_value<Act>(sn);
      // Heads in chunks of U, every load of a chunk before its stores (the compiler cannot tell
      // that a store leaves the next head's elements alone: one memory round trip per head).
      constexpr int U = rotary_policy::heads_unroll;
      for (index_t h0 = 0; h0 < H; h0 += U) {
        float v0[U], v1[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
          v0[u] = v1[u] = 0.0f;
          if (h0 + u < H) {
            v0[u] = load_as<float>(a.x(b, t, h0 + u, j));
            v1[u] = load_as<float>(a.x(b, t, h0 + u, j + half));
          }
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
          if (h0 + u >= H) break;
          a.x(b, t, h0 + u, j) = store_as<Act>(rotary_first(v0[u], v1[u], c, s));
          a.x(b, t, h0 + u, j + half) = store_as<Act>(rotary_second(v0[u], v1[u], c, s));
        }
      }
    }
  }
}

} // namespace detail

/// rotary on the tag's stream; x, position_offset and cu_seqlens in device memory.
template <int Sm, class Act>
[[nodiscard]] status rotary(const cuda<Sm>& be, const rotary_args<Act>& a) noexcept {
  static_assert(!std::is_same_v<Act, double>, "CUDA rotary: f32, bf16 or f16 activations");
  RODIMUS_TRY(rotary_check(a));
  const index_t r = rotary_channels(a), half = r / 2;
  const index_t tokens = a.x.shape[0] * a.x.shape[1];
  if (half == 0 || a.x.numel() == 0) return status::success();
  using P = detail::rotary_policy;
  detail::rotary_theta_table table{};
  for (index_t j = 0; j < half && j < P::table_entries; ++j) // the reference's expression
    table.v[j] = rotary_theta(a.base, j, r);
  int lanes = 32;
  while (lanes < P::threads && lanes < half)
    lanes *= 2;
  RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be), detail::rotary_kernel<Act>,
                                  detail::elements_grid(tokens, P::threads / lanes), P::threads, 0,
                                  a, table, lanes));
  return status::success();
}

} // namespace rodimus
