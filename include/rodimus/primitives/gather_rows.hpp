// Row gather: picks rows of an (M, D) f32 matrix, e.g. the last token of each sequence of a packed
// prefill, so that the LM head runs on those rows only:
//
//   out[i, :] = in[rows[i], :]       rows[i] in [0, M)
//   out[i, :] = 0                    rows[i] == -1 (a padding row)
//
// in: (M, D) f32; rows: (R) int64; out: (R, D) f32, written (must not overlap in). A copy: every
// backend gives the same bits.
//
// Rows are contents: the host backends check every entry before writing anything (rows[i] outside
// [-1, M) is bad_argument "rows", gather_rows_check_rows). On CUDA rows live in device memory, so
// the host cannot check them there: such an entry writes a row of NaN (never a read out of
// bounds). The model runner builds the rows on the host.
#pragma once

#include <cstdint>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"

namespace rodimus {

struct gather_rows_args {
  tensor_view<const float, 2> in;     // (M, D)
  const std::int64_t* rows = nullptr; // (R) row of in, or -1 for a row of zeros
  index_t num_rows = 0;               // R
  tensor_view<float, 2> out;          // (R, D) written
};

/// Validation shared by every backend (does not read rows).
[[nodiscard]] inline status gather_rows_check(const gather_rows_args& a) noexcept {
  RODIMUS_REQUIRE(a.num_rows >= 0, bad_shape, "num_rows");
  RODIMUS_REQUIRE(a.in.data || a.in.numel() == 0, null_pointer, "in");
  RODIMUS_REQUIRE(a.rows || a.num_rows == 0, null_pointer, "rows");
  RODIMUS_REQUIRE(a.out.data || a.out.numel() == 0, null_pointer, "out");
  RODIMUS_REQUIRE(a.in.shape[0] >= 0 && a.in.shape[1] >= 0, bad_shape, "in");
  RODIMUS_REQUIRE(has_shape(a.out, {a.num_rows, a.in.shape[1]}), bad_shape, "out");
  return status::success();
}

/// Host-side check of the rows (backends whose index arrays are host memory): each in [-1, M).
[[nodiscard]] inline status gather_rows_check_rows(const gather_rows_args& a) noexcept {
  for (index_t i = 0; i < a.num_rows; ++i)
    RODIMUS_REQUIRE(a.rows[i] >= -1 && a.rows[i] < a.in.shape[0], bad_argument, "rows");
  return status::success();
}

} // namespace rodimus
