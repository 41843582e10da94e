// Rotary embedding (NeoX rotate-half) on the CPU backend, in place (math and shapes in
// rodimus/primitives/rotary.hpp). Per token the cos/sin table (r/2 entries, f32 angles, rounded to
// Act as the reference does) is computed once with the same f32 functions as the scalar oracle and
// shared by all heads; the rotation is vectorised over the channel pairs. Threads split tokens.
#pragma once

#include <cmath>

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/backend/scalar/rotary.hpp" // the fallback for what this backend does not cover
#include "rodimus/primitives/packed_sequences.hpp"
#include "rodimus/primitives/rotary.hpp"

namespace rodimus {

/// Whether rotary() on cpu<Arch> runs the scalar reference for `a` instead of its own kernel (Act
/// other than f32 / bf16 / f16, an inner stride other than 1, more than 1024 rotated channels).
/// Benchmarks check it, so that they never time the fallback (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch, class Act>
[[nodiscard]] bool falls_back_to_scalar(const cpu<Arch>&, const rotary_args<Act>& a) noexcept {
  if constexpr (!detail::cpu_storage_type<Act>)
    return true;
  else {
    const index_t half = rotary_channels(a) / 2;
    return half != 0 && (a.x.stride[3] != 1 || half > 512);
  }
}

template <class Arch, class Act>
[[nodiscard]] status rotary(const cpu<Arch>& be, const rotary_args<Act>& a) noexcept {
  RODIMUS_TRY(rotary_check(a));
  RODIMUS_TRY(rotary_check_contents(a));
  if constexpr (!detail::cpu_storage_type<Act>) {
    return rotary(scalar{}, a);
  } else {
    const index_t B = a.x.shape[0], T = a.x.shape[1], H = a.x.shape[2];
    const index_t r = rotary_channels(a), half = r / 2;
    if (half == 0) return status::success();
    if (falls_back_to_scalar(be, a)) return rotary(scalar{}, a);
    using V = detail::fbatch<Arch>;
    constexpr index_t W = index_t(detail::lanes<Arch>);
    const index_t hv = half / W * W;
    const index_t N = sequence_count(a.cu_seqlens, a.num_seqs, B);
    float theta[512];
    for (index_t j = 0; j < half; ++j)
      theta[j] = rotary_theta(a.base, j, r);
    for (index_t n = 0; n < N; ++n) {
      const sequence_range seq = sequence_at(a.cu_seqlens, n, T);
      const index_t offset = a.position_offset ? index_t(a.position_offset[n]) : 0;
      parallel_for(be.pool, seq.begin, seq.end, detail::rows_grain(H * r),
                   [&](index_t lo, index_t hi) {
                     alignas(64) float cs[512], sn[512];
                     for (index_t t = lo; t < hi; ++t) {
                       const index_t p = offset + (t - seq.begin);
                       for (index_t j = 0; j < half; ++j) {
                         const float angle = rotary_angle(p, theta[j]);
                         cs[j] = rotary_table_value<Act>(std::cos(angle));
                         sn[j] = rotary_table_value<Act>(std::sin(angle));
                       }
                       for (index_t h = 0; h < H; ++h) {
                         Act* x = &a.x(seq.batch, t, h, index_t(0));
                         for (index_t j = 0; j < hv; j += W) {
                           const V v0 = detail::load_f32<Arch>(x + j),
                                   v1 = detail::load_f32<Arch>(x + j + half);
                           const V c = V::load_aligned(cs + j), s = V::load_aligned(sn + j);
                           detail::store_f32<Arch>(x + j, rotary_first(v0, v1, c, s));
                           detail::store_f32<Arch>(x + j + half, rotary_second(v0, v1, c, s));
                         }
                         for (index_t j = hv; j < half; ++j) {
                           const float v0 = load_as<float>(x[j]), v1 = load_as<float>(x[j + half]);
                           x[j] = store_as<Act>(rotary_first(v0, v1, cs[j], sn[j]));
                           x[j + half] = store_as<Act>(rotary_second(v0, v1, cs[j], sn[j]));
                         }
                       }
                     }
                   });
    }
    return status::success();
  }
}

} // namespace rodimus
