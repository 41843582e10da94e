// Scalar reference of argmax_rows: one row after another.
#pragma once

#include "rodimus/primitives/argmax_rows.hpp"

namespace rodimus {

[[nodiscard]] inline status argmax_rows(const scalar&, const argmax_rows_args& a) noexcept {
  RODIMUS_TRY(argmax_rows_check(a));
  const index_t M = a.in.shape[0], V = a.in.shape[1];
  for (index_t m = 0; m < M; ++m)
    a.out[m] = argmax_row(a.in.data + m * a.in.stride[0], V, a.in.stride[1]);
  return status::success();
}

} // namespace rodimus
