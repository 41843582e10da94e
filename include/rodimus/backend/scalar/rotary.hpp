// Scalar reference of the rotary embedding: f32 frequencies and angles, cos/sin rounded to Act,
// rotation in f32 (everything in double when Act is f64).
#pragma once

#include <cmath>
#include <type_traits>

#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/rotary.hpp"

namespace rodimus {

template <class Act>
[[nodiscard]] status rotary(const scalar&, const rotary_args<Act>& a) noexcept {
  using compute = std::conditional_t<std::is_same_v<Act, double>, double, float>;
  RODIMUS_TRY(rotary_check(a));
  RODIMUS_TRY(rotary_check_contents(a));
  const index_t B = a.x.shape[0], T = a.x.shape[1], H = a.x.shape[2];
  const index_t r = rotary_channels(a), half = r / 2;
  if (half == 0) return status::success();
  const index_t N = sequence_count(a.cu_seqlens, a.num_seqs, B);
  for (index_t n = 0; n < N; ++n) {
    const sequence_range seq = sequence_at(a.cu_seqlens, n, T);
    const index_t offset = a.position_offset ? index_t(a.position_offset[n]) : 0;
    for (index_t t = seq.begin; t < seq.end; ++t) {
      const index_t p = offset + (t - seq.begin);
      for (index_t j = 0; j < half; ++j) {
        const compute angle = rotary_angle(p, rotary_theta(compute(a.base), j, r));
        const compute c = rotary_table_value<Act>(compute(std::cos(angle)));
        const compute s = rotary_table_value<Act>(compute(std::sin(angle)));
        for (index_t h = 0; h < H; ++h) {
          Act& x0 = a.x(seq.batch, t, h, j);
          Act& x1 = a.x(seq.batch, t, h, j + half);
          const compute v0 = load_as<compute>(x0), v1 = load_as<compute>(x1);
          x0 = store_as<Act>(rotary_first(v0, v1, c, s));
          x1 = store_as<Act>(rotary_second(v0, v1, c, s));
        }
      }
    }
  }
  return status::success();
}

} // namespace rodimus
