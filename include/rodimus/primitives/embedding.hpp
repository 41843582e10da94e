// Embedding lookup: the first step of the model runner (docs/MODEL.md §1.1), a gather of table rows
// by token id, widened to f32 and scaled (embed_scale: sqrt(mem_size) with use_scale_embedding, 1
// in every release):
//
//   out[m, :] = f32(table[ids[m], :]) * scale            m < M, ids[m] in [0, V)
//
// Table: f32, bf16 or f16 (the weight's stored dtype; f64 in reference tests). The scalar reference
// multiplies in double and rounds once, which equals the f32 product (the product of two floats is
// exact in double), so every backend gives the same bits.
//
// Ids are contents: the host backends check every id before writing anything (bad_argument "ids",
// embedding_check_ids). On CUDA ids live in device memory, so the host cannot check them there: an
// out-of-range id writes a row of NaN (never a read out of bounds). The model runner checks the ids
// on the host before uploading them.
#pragma once

#include <cstdint>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"

namespace rodimus {

template <class Table> struct embedding_args {
  tensor_view<const Table, 2> table; // (V, D) f32 / bf16 / f16
  const std::int64_t* ids = nullptr; // (M) token ids, each in [0, V)
  index_t num_ids = 0;               // M
  tensor_view<float, 2> out;         // (M, D) written
  float scale = 1.0f;
};

/// Validation shared by every backend (does not read ids).
template <class Table>
[[nodiscard]] status embedding_check(const embedding_args<Table>& a) noexcept {
  RODIMUS_REQUIRE(a.num_ids >= 0, bad_shape, "num_ids");
  RODIMUS_REQUIRE(a.table.data || a.table.numel() == 0, null_pointer, "table");
  RODIMUS_REQUIRE(a.ids || a.num_ids == 0, null_pointer, "ids");
  RODIMUS_REQUIRE(a.out.data || a.out.numel() == 0, null_pointer, "out");
  RODIMUS_REQUIRE(a.table.shape[0] >= 0 && a.table.shape[1] >= 0, bad_shape, "table");
  RODIMUS_REQUIRE(has_shape(a.out, {a.num_ids, a.table.shape[1]}), bad_shape, "out");
  return status::success();
}

/// Host-side check of the ids (backends whose index arrays are host memory): each in [0, V).
template <class Table>
[[nodiscard]] status embedding_check_ids(const embedding_args<Table>& a) noexcept {
  for (index_t m = 0; m < a.num_ids; ++m)
    RODIMUS_REQUIRE(a.ids[m] >= 0 && a.ids[m] < a.table.shape[0], bad_argument, "ids");
  return status::success();
}

} // namespace rodimus
