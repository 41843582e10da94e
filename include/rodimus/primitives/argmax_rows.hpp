// Greedy token choice on the backend: the index of the largest entry of each row of the logits,
// so a decode step hands back N token ids instead of N x V logits:
//
//   out[m] = the smallest i with in[m, i] == max_j in[m, j]          (first index among ties)
//
// in: (M, V) f32, V in [1, 2^32); out: (M) int64, written. Entries compare by argmax_key (below):
// NaN is smaller than every number (a row of NaN only gives 0) and +0 is larger than -0, so every
// backend picks the same index bit for bit whatever order it reduces in.
#pragma once

#include <cstdint>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"

namespace rodimus {

struct argmax_rows_args {
  tensor_view<const float, 2> in; // (M, V)
  std::int64_t* out = nullptr;    // (M) written
};

/// A 64-bit key whose unsigned order is argmax's order: the float's total order (NaN lowest) in
/// the high word, the complement of the index in the low word (the smaller index wins a tie).
RODIMUS_HOST_DEVICE inline std::uint64_t argmax_key(float v, index_t i) noexcept {
  const std::uint32_t b = detail::float_bits(v);
  const bool nan = (b & 0x7fffffffu) > 0x7f800000u;
  const std::uint32_t ordered = nan ? 0u : (b & 0x80000000u) ? ~b : (b | 0x80000000u);
  return (std::uint64_t(ordered) << 32) | std::uint64_t(0xffffffffu - std::uint32_t(i));
}

/// The index a key stands for.
RODIMUS_HOST_DEVICE inline std::int64_t argmax_index(std::uint64_t key) noexcept {
  return std::int64_t(0xffffffffu - std::uint32_t(key & 0xffffffffu));
}

/// Validation shared by every backend.
[[nodiscard]] inline status argmax_rows_check(const argmax_rows_args& a) noexcept {
  const index_t M = a.in.shape[0], V = a.in.shape[1];
  RODIMUS_REQUIRE(M >= 0 && V >= 0, bad_shape, "in");
  RODIMUS_REQUIRE(M == 0 || (V >= 1 && V <= index_t(0xffffffffLL)), bad_shape, "in");
  RODIMUS_REQUIRE(a.in.data || a.in.numel() == 0, null_pointer, "in");
  RODIMUS_REQUIRE(a.out || M == 0, null_pointer, "out");
  return status::success();
}

/// out for one row of V entries at `row` with element stride `stride` (the host backends' loop).
inline std::int64_t argmax_row(const float* row, index_t V, index_t stride) noexcept {
  std::uint64_t best = 0;
  for (index_t i = 0; i < V; ++i) {
    const std::uint64_t k = argmax_key(row[i * stride], i);
    best = k > best ? k : best;
  }
  return argmax_index(best);
}

} // namespace rodimus
