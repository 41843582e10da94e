// mixer_decode on the CPU backend (math in rodimus/primitives/mixer_decode.hpp): the composition
// of the cpu<Arch> linear (low-rank form), channel_gate, ddts, gla_decode and scale_add
// (detail::mixer_decode_composed in backend/scalar/mixer_decode.hpp), so each step runs (or falls
// back) exactly as the primitive does alone; no fused CPU kernel (there is no launch cost to save
// on the host).
#pragma once

#include <algorithm>
#include <cstddef>

#include "rodimus/backend/cpu/channel_gate.hpp"
#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/backend/cpu/ddts.hpp"
#include "rodimus/backend/cpu/gla.hpp"
#include "rodimus/backend/cpu/linear.hpp"
#include "rodimus/backend/cpu/scale_add.hpp"
#include "rodimus/backend/scalar/mixer_decode.hpp" // the composition (written once on the backend)
#include "rodimus/primitives/mixer_decode.hpp"

namespace rodimus {

template <class Arch, class UpWeight>
std::size_t mixer_decode_workspace_bytes(const cpu<Arch>& be,
                                         const mixer_decode_args<UpWeight>& a) noexcept {
  return detail::mixer_decode_composed_workspace_bytes(be, a);
}

template <class Arch, class UpWeight>
[[nodiscard]] status mixer_decode(const cpu<Arch>& be, const mixer_decode_args<UpWeight>& a,
                                  workspace ws) noexcept {
  RODIMUS_TRY(mixer_decode_check(a));
  return detail::mixer_decode_composed(be, a, ws);
}

} // namespace rodimus
