// Rotary position embedding, GPT-NeoX "rotate-half" pairing (docs/MODEL.md §5.2, §11.3), in place:
//
//   r       = rotary_dim (even, 0 < r <= D; -1 means D; 0 turns rotary off), half = r / 2
//   theta_j = 1 / base^(2j / r)              j < half, in f32 like the reference
//   p       = position_offset[n] + t         t: the token's index inside its sequence
//   angle   = f32(p) * theta_j               f32
//   c, s    = Act(cos(angle)), Act(sin(angle))   the tables are rounded to Act, as the reference
//   x'_j        = x_j c - x_{j+half} s       the rotation in f32 (double when Act is f64)
//   x'_{j+half} = x_j s + x_{j+half} c
//   channels r .. D-1 pass through untouched
//
// Applied to q (all heads) and k (before caching). Arguments:
//   x: (B, T, H, D) Act (f64, f32, bf16, f16), rotated in place
//   position_offset: (N) absolute position of each sequence's first token (tokens seen before,
//                    >= 0); nullptr means 0. N = B, or num_seqs with cu_seqlens (packed, B == 1).
#pragma once

#include <cmath>
#include <cstdint>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/primitives/packed_sequences.hpp"

namespace rodimus {

template <class Act> struct rotary_args {
  tensor_view<Act, 4> x;                         // (B, T, H, D) rotated in place
  const std::int64_t* position_offset = nullptr; // (N) nullptr: 0
  int rotary_dim = -1;                           // -1: D; 0: no rotation; else even, <= D
  float base = 10000.0f;
  const std::int64_t* cu_seqlens = nullptr; // packed varlen, B == 1
  std::int64_t num_seqs = 0;
};

/// The formulas above, written once for every backend and for swska_decode's in-step rotation
/// (primitives/swska.hpp): C is the compute type (float; double for f64 activations; an xsimd
/// batch of floats for the rotation).
///
/// theta_j in C, the reference's expression. The CUDA kernels take it from the host (the device's
/// pow may differ by an ulp, which at position 10^4 moves the angle by ~10^-3).
template <class C> inline C rotary_theta(C base, index_t j, index_t r) noexcept {
  return C(1) / std::pow(base, C(2 * j) / C(r));
}

/// The angle of channel pair j at absolute position p: C(p) * theta_j.
template <class C> RODIMUS_HOST_DEVICE inline C rotary_angle(index_t p, C theta) noexcept {
  return C(p) * theta;
}

/// cos or sin of an angle as the tables hold it: rounded to Act (as the reference does), in C.
template <class Act, class C> RODIMUS_HOST_DEVICE inline C rotary_table_value(C v) noexcept {
  return load_as<C>(store_as<Act>(v));
}

/// The rotated pair: x'_j = rotary_first(x_j, x_{j+half}, c, s), x'_{j+half} = rotary_second(...).
template <class C> RODIMUS_HOST_DEVICE inline C rotary_first(C x0, C x1, C c, C s) noexcept {
  return x0 * c - x1 * s;
}
template <class C> RODIMUS_HOST_DEVICE inline C rotary_second(C x0, C x1, C c, C s) noexcept {
  return x0 * s + x1 * c;
}

/// The number of rotated channels (rotary_dim with -1 resolved to D).
template <class Act>
RODIMUS_HOST_DEVICE constexpr index_t rotary_channels(const rotary_args<Act>& a) noexcept {
  return a.rotary_dim < 0 ? a.x.shape[3] : index_t(a.rotary_dim);
}

/// The shape checks shared by every backend (does not read position_offset or cu_seqlens).
template <class Act> [[nodiscard]] status rotary_check(const rotary_args<Act>& a) noexcept {
  RODIMUS_REQUIRE(a.x.data || a.x.numel() == 0, null_pointer, "x");
  for (int d = 0; d < 4; ++d)
    RODIMUS_REQUIRE(a.x.shape[d] >= 0, bad_shape, "x");
  RODIMUS_REQUIRE(a.x.shape[3] > 0, bad_shape, "x");
  RODIMUS_REQUIRE(a.rotary_dim >= -1, bad_argument, "rotary_dim");
  const index_t r = rotary_channels(a);
  RODIMUS_REQUIRE(r % 2 == 0 && r <= a.x.shape[3], bad_argument, "rotary_dim");
  RODIMUS_REQUIRE(std::isfinite(a.base) && a.base > 0.0f, bad_argument, "base");
  RODIMUS_TRY(check_packed_shape(a.cu_seqlens, a.num_seqs, a.x.shape[0]));
  return status::success();
}

/// The checks that read the index arrays, so only where they are host memory (scalar, cpu; the
/// CUDA backend cannot: see backend/cuda/rotary.cuh): cu_seqlens' offsets (check_packed_offsets)
/// and every position_offset >= 0 (an offset is a count of tokens seen before).
template <class Act>
[[nodiscard]] status rotary_check_contents(const rotary_args<Act>& a) noexcept {
  RODIMUS_TRY(check_packed_offsets(a.cu_seqlens, a.num_seqs, a.x.shape[1]));
  const index_t N = sequence_count(a.cu_seqlens, a.num_seqs, a.x.shape[0]);
  for (index_t n = 0; a.position_offset && n < N; ++n)
    RODIMUS_REQUIRE(a.position_offset[n] >= 0, bad_argument, "position_offset");
  return status::success();
}

} // namespace rodimus
