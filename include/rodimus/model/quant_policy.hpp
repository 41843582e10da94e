// Which weight matrices of a model are block-quantised at load time (model_weights::load's `quant`
// argument; formats in rodimus/primitives/quant_format.hpp), and in which format.
//
// Four classes of matrix, by checkpoint name (model/weights.hpp lists them):
//   projections:     mixer.fc, mixer.out_proj, attn.{q,k,v,out}_proj, ffn.fc, ffn.out_proj: the
//                    bulk of the bytes a decode step streams;
//   lm_head:         the output projection [V, D]. With tied embeddings it is the embedding
//                    matrix: then a quantised copy serves as the head while the embedding gather
//                    keeps reading the stored table (a gather reads M rows, a head reads all V);
//   low rank:        the DDTS projections inner_mixer.in_proj, mem_gate_proj and the channel
//                    gate's down projection ch_gate_proj.0 (W0): small ([2N, E], [2N, E], [R, E])
//                    and feeding gates and decays, where an error is compounded through the
//                    recurrence;
//   channel_gate_up: the channel gate's up projection ch_gate_proj.1 (W1, [E, R]). Its rows are
//                    R long (R = 32 at rodimus-plus-1.6b: one block a row), so a quantised W1
//                    costs per-row work for few bytes (4096 x 32 at batch 1 on the 2-core build
//                    machine: 23 us in q8_0 against 13 us in bf16), and only a W1 in a stored
//                    dtype is applied inside mixer_decode (blocks/mixer.hpp; a quantised one is a
//                    linear call of its own before it).
// The embedding table, the norms, biases and the conv kernel are never quantised. Any row length
// (its K) can be quantised: a K that is not a multiple of 32 (the FFN down projection of
// rodimus-plus-1.6b, K = F = 2736) ends each row in a zero-padded block (quant_format.hpp).
//
// The presets (`--weights q8|q4` in the tool) quantise the projections and the head in the named
// format, the low-rank projections in q8_0 (both presets: the finer format for the matrices that
// feed the recurrence's gates and decays) and leave the channel gate's up projection stored.
// docs/QUANT.md has the accuracy measured for that choice on tiny-coder and for the alternatives
// (until 2026-12-07 the presets kept the low-rank projections stored, and the q4 preset the head
// in q8_0: a q4_0 head missed the 3% goal on the decode path before q4_0's scale search; from
// d8f016d until channel_gate_up had a class of its own, W1 was in the low-rank class, in q8_0).
// A checkpoint saved under that policy (W1 in q8_0) still loads as it is stored (no --weights):
// the file says each tensor's format.
#pragma once

#include <string>

#include "rodimus/core/error.hpp"
#include "rodimus/primitives/quant_format.hpp"

namespace rodimus {

struct quant_policy {
  weight_format projections = weight_format::stored;
  weight_format lm_head = weight_format::stored;
  weight_format low_rank = weight_format::stored;
  weight_format channel_gate_up = weight_format::stored;

  bool any() const noexcept {
    return projections != weight_format::stored || lm_head != weight_format::stored ||
           low_rank != weight_format::stored || channel_gate_up != weight_format::stored;
  }

  /// The preset for one format: the projections and the head in `f`, the low-rank projections in
  /// q8_0, the channel gate's up projection stored (measured on tiny-coder and rodimus-plus-1.6b:
  /// docs/QUANT.md); `stored` gives no quantisation at all.
  static quant_policy preset(weight_format f) noexcept {
    quant_policy p;
    if (f == weight_format::stored) return p;
    p.projections = f;
    p.lm_head = f;
    p.low_rank = weight_format::q8_0; // (channel_gate_up stays stored: see the top of the file)
    return p;
  }

  /// `stored`, `q8` or `q4` (the tool's --weights values), else a rodimus::error naming `flag`.
  static quant_policy parse(const std::string& text, const std::string& flag = "--weights") {
    if (text == "stored") return {};
    if (text == "q8") return preset(weight_format::q8_0);
    if (text == "q4") return preset(weight_format::q4_0);
    throw error(flag + ": expected stored, q8 or q4, got '" + text + "'");
  }

  /// The class of the matrix `name` (a checkpoint name; "lm_head.weight" also stands for the head
  /// of a tied model): the policy's member for it, or nullptr for a tensor never quantised
  /// (embeddings, norms, biases, the conv kernel).
  static weight_format quant_policy::*class_of(const std::string& name) {
    const auto ends_with = [&](const char* suffix) {
      const std::string s(suffix);
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    if (name == "lm_head.weight") return &quant_policy::lm_head;
    if (ends_with("mixer.fc.weight") || ends_with("mixer.out_proj.weight") ||
        ends_with("attn.q_proj.weight") || ends_with("attn.k_proj.weight") ||
        ends_with("attn.v_proj.weight") || ends_with("attn.out_proj.weight") ||
        ends_with("ffn.fc.weight") || ends_with("ffn.out_proj.weight"))
      return &quant_policy::projections;
    if (ends_with("inner_mixer.in_proj.weight") || ends_with("mem_gate_proj.weight") ||
        ends_with("ch_gate_proj.0.weight"))
      return &quant_policy::low_rank;
    if (ends_with("ch_gate_proj.1.weight")) return &quant_policy::channel_gate_up;
    return nullptr;
  }

  /// Whether the model may read the tensor `name` block-quantised (a linear layer's weight).
  static bool quantisable(const std::string& name) { return class_of(name) != nullptr; }

  /// The format for the matrix `name` (as class_of), whatever its row length.
  weight_format format_for(const std::string& name) const {
    const auto member = class_of(name);
    return member ? this->*member : weight_format::stored; // embeddings
  }
};

} // namespace rodimus
