// The slot rule, shared by every primitive that addresses a pool of states by index (the `slot`
// field of gla_args, gla_decode_args, causal_conv_args, causal_conv_step_args, swska_args,
// swska_decode_args and swska_ring_store_args) and by the model runner (docs/ARCHITECTURE.md
// "Slots"):
//
//   slot == -1          a padding row (or sequence): every backend skips it; its outputs and the
//                       pool stay exactly as they were (the engines' CUDA-graph convention: a batch
//                       padded to a captured size).
//   0 <= slot < P       the row of the pool it addresses (P: the rows of every pool given).
//   anything else       (-2, -5, P, ...) an error: host backends (scalar, cpu) return bad_argument
//                       naming the array before anything is written. CUDA cannot read a device
//                       array on the host without a synchronisation, so its kernels skip such a row
//                       like padding (never an out-of-bounds access); the model runner checks its
//                       slots on the host before any backend runs.
//
// One name, one meaning: `slot` is always the pool row of one decode row or one prefill sequence:
// its state in the pools it reads and writes (gla_args, gla_decode_args, causal_conv_args,
// causal_conv_step_args) or its ring (swska_args reads it as the history, swska_decode reads and
// writes it, swska_ring_store writes it). Status messages name the field ("slot").
#pragma once

#include <cstdint>
#include <limits>

#include "rodimus/core/macros.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"

namespace rodimus {

/// The slot of a padding row.
constexpr std::int32_t padding_slot = -1;

/// Pool rows for a slot check when no pool is given (the slot then addresses nothing).
constexpr index_t unbounded_pool = std::numeric_limits<index_t>::max();

RODIMUS_HOST_DEVICE constexpr bool is_padding_slot(index_t s) noexcept { return s == padding_slot; }

/// Whether slot s addresses a row of a pool of P rows. Kernels compute a row only when this
/// holds: padding and invalid slots are skipped alike.
RODIMUS_HOST_DEVICE constexpr bool slot_in_pool(index_t s, index_t P) noexcept {
  return s >= 0 && s < P;
}

/// Row i's slot: slot[i], or i when the slot array is absent (the pool is indexed by row).
RODIMUS_HOST_DEVICE inline index_t slot_at(const std::int32_t* slot, index_t i) noexcept {
  return slot ? index_t(slot[i]) : i;
}

/// The rows a slot may address in a pool view: its first dimension, or unbounded_pool when the
/// view is absent (data == nullptr: that pool is not read or written).
template <class T, int R>
RODIMUS_HOST_DEVICE inline index_t pool_rows(const tensor_view<T, R>& pool) noexcept {
  return pool.data ? pool.shape[0] : unbounded_pool;
}

/// Host check of n slots (host backends and the runner): each is padding or inside [0, P); with
/// `distinct`, no two non-padding slots are equal (two rows updating one state in place would race,
/// or one result be lost). bad_argument naming `name` otherwise. nullptr: nothing to check (the
/// shape checks require P >= n then).
[[nodiscard]] inline status check_slots(const std::int32_t* slot, index_t n, index_t P,
                                        bool distinct, const char* name) noexcept {
  if (!slot) return status::success();
  for (index_t i = 0; i < n; ++i) {
    const index_t s = slot[i];
    if (is_padding_slot(s)) continue;
    RODIMUS_REQUIRE(slot_in_pool(s, P), bad_argument, name);
    for (index_t j = 0; distinct && j < i; ++j)
      RODIMUS_REQUIRE(slot[j] != s, bad_argument, name);
  }
  return status::success();
}

} // namespace rodimus
