// Scalar reference of the row gather: plain loops.
#pragma once

#include "rodimus/primitives/gather_rows.hpp"

namespace rodimus {

[[nodiscard]] inline status gather_rows(const scalar&, const gather_rows_args& a) noexcept {
  RODIMUS_TRY(gather_rows_check(a));
  RODIMUS_TRY(gather_rows_check_rows(a));
  const index_t R = a.num_rows, D = a.in.shape[1];
  for (index_t i = 0; i < R; ++i)
    for (index_t d = 0; d < D; ++d)
      a.out(i, d) = a.rows[i] >= 0 ? a.in(a.rows[i], d) : 0.0f;
  return status::success();
}

} // namespace rodimus
