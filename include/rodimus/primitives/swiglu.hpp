// SwiGLU of the Rodimus+ FFN (docs/MODEL.md §1.6): the fc output's first half is the value, the
// second half the gate, and SiLU acts on the SECOND half:
//
//   y[m, f] = Act( silu(fc[m, F + f]) * fc[m, f] )        f < F, computed in f32 (double in scalar)
//
// fc: (M, 2F) Act; y: (M, F) Act (y must not overlap fc).
#pragma once

#include "rodimus/core/backend.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"

namespace rodimus {

template <class Act> struct swiglu_args {
  tensor_view<const Act, 2> fc; // (M, 2F) [value | gate]
  tensor_view<Act, 2> y;        // (M, F) written
};

/// Validation shared by every backend.
template <class Act> [[nodiscard]] status swiglu_check(const swiglu_args<Act>& a) noexcept {
  RODIMUS_REQUIRE(a.fc.data || a.fc.numel() == 0, null_pointer, "fc");
  RODIMUS_REQUIRE(a.y.data || a.y.numel() == 0, null_pointer, "y");
  RODIMUS_REQUIRE(a.fc.shape[0] >= 0 && a.fc.shape[1] >= 0 && a.fc.shape[1] % 2 == 0, bad_shape,
                  "fc");
  RODIMUS_REQUIRE(has_shape(a.y, {a.fc.shape[0], a.fc.shape[1] / 2}), bad_shape, "y");
  return status::success();
}

} // namespace rodimus
