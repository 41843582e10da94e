// Per-channel scaled add, the Rodimus mixer's internal skip (docs/MODEL.md §2.3 step 11,
// blocks/mixer.hpp step 11: o = o_gla + c * residual_weight), in place on o:
//
//   o[m, e] += c[m, e] * w[e]                               f32 (double in the scalar reference)
//
// o: (M, E) f32, updated; c: (M, E) f32 (must not overlap o); w: (E) f32.
#pragma once

#include "rodimus/core/backend.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"

namespace rodimus {

struct scale_add_args {
  tensor_view<float, 2> o;       // (M, E) updated
  tensor_view<const float, 2> c; // (M, E)
  tensor_view<const float, 1> w; // (E)
};

/// Validation shared by every backend.
[[nodiscard]] inline status scale_add_check(const scale_add_args& a) noexcept {
  RODIMUS_REQUIRE(a.o.data || a.o.numel() == 0, null_pointer, "o");
  RODIMUS_REQUIRE(a.c.data || a.c.numel() == 0, null_pointer, "c");
  RODIMUS_REQUIRE(a.w.data || a.w.numel() == 0, null_pointer, "w");
  RODIMUS_REQUIRE(a.o.shape[0] >= 0 && a.o.shape[1] >= 0, bad_shape, "o");
  RODIMUS_REQUIRE(has_shape(a.c, {a.o.shape[0], a.o.shape[1]}), bad_shape, "c");
  RODIMUS_REQUIRE(a.w.shape[0] == a.o.shape[1], bad_shape, "w");
  return status::success();
}

} // namespace rodimus
