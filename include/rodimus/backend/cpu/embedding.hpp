// Embedding lookup on the CPU backend (math and shapes in rodimus/primitives/embedding.hpp):
//
//   out[m, :] = f32(table[ids[m], :]) * scale
//
// Ids are checked on the host first (bad_argument "ids", nothing written). Threads split the rows;
// each row is widened and scaled with xsimd (the f32 product: the same bits as the reference).
// Inner strides other than 1, or table types other than f32/bf16/f16, run the scalar reference.
#pragma once

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/simd.hpp"
#include "rodimus/backend/scalar/embedding.hpp" // the fallback for what this backend does not cover
#include "rodimus/primitives/embedding.hpp"

namespace rodimus {

/// Whether embedding() on cpu<Arch> runs the scalar reference for `a` instead of its own kernel (a
/// table type other than f32 / bf16 / f16, an inner stride other than 1). Benchmarks check it, so
/// that they never time the fallback (docs/ARCHITECTURE.md "Fallbacks").
template <class Arch, class Table>
[[nodiscard]] bool falls_back_to_scalar(const cpu<Arch>&, const embedding_args<Table>& a) noexcept {
  if constexpr (!detail::cpu_storage_type<Table>)
    return true;
  else
    return a.table.stride[1] != 1 || a.out.stride[1] != 1;
}

template <class Arch, class Table>
[[nodiscard]] status embedding(const cpu<Arch>& be, const embedding_args<Table>& a) noexcept {
  RODIMUS_TRY(embedding_check(a));
  if constexpr (!detail::cpu_storage_type<Table>) {
    return embedding(scalar{}, a);
  } else {
    if (falls_back_to_scalar(be, a)) return embedding(scalar{}, a);
    RODIMUS_TRY(embedding_check_ids(a));
    using B = detail::fbatch<Arch>;
    constexpr index_t W = index_t(detail::lanes<Arch>);
    const index_t M = a.num_ids, D = a.table.shape[1], Dv = D / W * W;
    const B scale(a.scale);
    parallel_for(be.pool, 0, M, detail::rows_grain(D), [&](index_t lo, index_t hi) {
      for (index_t m = lo; m < hi; ++m) {
        const Table* src = &a.table(a.ids[m], index_t(0));
        float* dst = &a.out(m, index_t(0));
        for (index_t d = 0; d < Dv; d += W)
          (detail::load_f32<Arch>(src + d) * scale).store_unaligned(dst + d);
        for (index_t d = Dv; d < D; ++d)
          dst[d] = load_as<float>(src[d]) * a.scale;
      }
    });
    return status::success();
  }
}

} // namespace rodimus
