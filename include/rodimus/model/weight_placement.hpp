// Where model_weights keeps a checkpoint's big matrices (weight_placement), and what follows from
// it for the tensors of a checkpoint saved quantised: the layout they are kept in
// (saved_quant_layout; layouts in rodimus/primitives/quant_layout.hpp).
#pragma once

#include "rodimus/primitives/quant_layout.hpp"

namespace rodimus {

/// Where model_weights keeps the big matrices (model/weights.hpp).
enum class weight_placement {
  memory, ///< copied into anonymous memory on huge pages (default)
  mapped, ///< used in place in the file mapping
};

inline const char* placement_name(weight_placement p) noexcept {
  return p == weight_placement::memory ? "memory" : "mapped";
}

/// The layout model_weights keeps the quantised tensors of a checkpoint saved quantised in:
///   quant_layout::groups16  copied into memory and rearranged into the decode layout (what the
///                           fast decode kernels read);
///   quant_layout::blocks    used in place in the file mapping, as saved (nothing copied).
/// `requested` is the placement asked for; `fell_back` says that `memory` fell back to the mapping
/// because the checkpoint exceeds physical memory: the fallback exists to keep such a checkpoint
/// from the OOM killer, so nothing is copied then. An explicit `mapped` copies them while their
/// bytes fit physical memory (0: unknown, taken to fit): the decode layout is the reason to load
/// quantised weights, worth the memory a mapping would have shared.
constexpr quant_layout saved_quant_layout(weight_placement requested, bool fell_back,
                                          double saved_quant_bytes,
                                          double physical_bytes) noexcept {
  if (requested == weight_placement::memory)
    return fell_back ? quant_layout::blocks : quant_layout::groups16;
  return physical_bytes <= 0 || saved_quant_bytes <= physical_bytes ? quant_layout::groups16
                                                                    : quant_layout::blocks;
}

} // namespace rodimus
