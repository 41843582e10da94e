// Shared-key sliding-window attention on the CPU backend (math, shapes and the ring layout in
// rodimus/primitives/swska.hpp). This backend currently runs the scalar reference for SW-SKA
// (double arithmetic, correct for every shape): cpu<Arch> callers such as the model runner get
// every entry point, and the SIMD kernels can replace these bodies without changing callers.
#pragma once

#include "rodimus/backend/cpu/cpu.hpp"
#include "rodimus/primitives/swska.hpp"

namespace rodimus {

template <class Arch, class Act>
std::size_t swska_prefill_workspace_bytes(const cpu<Arch>&, const swska_args<Act>& a) noexcept {
  return swska_prefill_workspace_bytes(scalar{}, a);
}

template <class Arch, class Act>
std::size_t swska_decode_workspace_bytes(const cpu<Arch>&,
                                         const swska_decode_args<Act>& a) noexcept {
  return swska_decode_workspace_bytes(scalar{}, a);
}

template <class Arch, class Act>
[[nodiscard]] status swska_prefill(const cpu<Arch>&, const swska_args<Act>& a,
                                   workspace ws) noexcept {
  return swska_prefill(scalar{}, a, ws);
}

template <class Arch, class Act>
[[nodiscard]] status swska_decode(const cpu<Arch>&, const swska_decode_args<Act>& a,
                                  workspace ws) noexcept {
  return swska_decode(scalar{}, a, ws);
}

template <class Arch, class Act>
[[nodiscard]] status swska_ring_store(const cpu<Arch>&,
                                      const swska_ring_store_args<Act>& a) noexcept {
  return swska_ring_store(scalar{}, a);
}

} // namespace rodimus
