// The row gather on the CPU backend (math and shapes in rodimus/primitives/gather_rows.hpp):
//
//   out[i, :] = in[rows[i], :], or zeros for rows[i] == -1
//
// Rows are checked on the host first (bad_argument "rows", nothing written). Threads split the
// output rows; a dense row is one memcpy.
#pragma once

#include <cstring>

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/primitives/gather_rows.hpp"

namespace rodimus {

template <class Arch>
[[nodiscard]] status gather_rows(const cpu<Arch>& be, const gather_rows_args& a) noexcept {
  RODIMUS_TRY(gather_rows_check(a));
  RODIMUS_TRY(gather_rows_check_rows(a));
  const index_t R = a.num_rows, D = a.in.shape[1];
  const bool dense = a.in.stride[1] == 1 && a.out.stride[1] == 1;
  parallel_for(be.pool, 0, R, detail::rows_grain(D), [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) {
      const index_t r = index_t(a.rows[i]);
      if (dense && D > 0) {
        float* dst = &a.out(i, index_t(0));
        if (r >= 0)
          std::memcpy(dst, &a.in(r, index_t(0)), std::size_t(D) * sizeof(float));
        else
          std::memset(dst, 0, std::size_t(D) * sizeof(float));
      } else {
        for (index_t d = 0; d < D; ++d)
          a.out(i, d) = r >= 0 ? a.in(r, d) : 0.0f;
      }
    }
  });
  return status::success();
}

} // namespace rodimus
