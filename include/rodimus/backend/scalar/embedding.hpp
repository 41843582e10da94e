// Scalar reference of the embedding lookup: plain loops, the product in double, rounded once.
#pragma once

#include "rodimus/core/dtype.hpp"
#include "rodimus/primitives/embedding.hpp"

namespace rodimus {

template <class Table>
[[nodiscard]] status embedding(const scalar&, const embedding_args<Table>& a) noexcept {
  RODIMUS_TRY(embedding_check(a));
  RODIMUS_TRY(embedding_check_ids(a));
  const index_t M = a.num_ids, D = a.table.shape[1];
  for (index_t m = 0; m < M; ++m)
    for (index_t d = 0; d < D; ++d)
      a.out(m, d) = float(load_as<double>(a.table(a.ids[m], d)) * double(a.scale));
  return status::success();
}

} // namespace rodimus
