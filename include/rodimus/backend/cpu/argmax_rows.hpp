// argmax_rows on the CPU backend (rodimus/primitives/argmax_rows.hpp): rows split over the pool's
// threads, each row the shared host loop (a batch of logits is a few rows of 10^5 entries: the
// loop streams at memory speed and the keys keep the result identical to the reference).
#pragma once

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/primitives/argmax_rows.hpp"

namespace rodimus {

template <class Arch>
[[nodiscard]] status argmax_rows(const cpu<Arch>& be, const argmax_rows_args& a) noexcept {
  RODIMUS_TRY(argmax_rows_check(a));
  const index_t M = a.in.shape[0], V = a.in.shape[1];
  parallel_for(be.pool, 0, M, 1, [&](index_t lo, index_t hi) {
    for (index_t m = lo; m < hi; ++m)
      a.out[m] = argmax_row(a.in.data + m * a.in.stride[0], V, a.in.stride[1]);
  });
  return status::success();
}

} // namespace rodimus
