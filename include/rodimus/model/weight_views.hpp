// The parameters of one model as the blocks read them: plain structs of views (pointer, dtype,
// shape), owned elsewhere. The loader (model/weights.hpp) fills them over host memory; a backend
// copy (model/backend_weights.hpp) fills the same structs over device memory, so the blocks are the
// same code on every backend and never include the loader, JSON or file mapping.
//
// Shapes (E = d_inner, N = mem_size, R = low rank, F = FFN size, D = d_model, W = d_conv, H/Hk/Hv
// heads of dim d_h, V = vocab_size); checkpoint names in model/weights.hpp.
#pragma once

#include <cstddef>
#include <vector>

#include "rodimus/core/dtype.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/primitives/quant_format.hpp"
#include "rodimus/primitives/quant_layout.hpp"

namespace rodimus {

/// A matrix [rows, cols] row-major in its stored dtype (f32, bf16 or f16), or block-quantised
/// (format q8_0 / q4_0: each row quant_blocks(cols) = ceil(cols / 32) blocks, the last one
/// zero-padded when cols % 32 != 0, rodimus/primitives/quant_format.hpp; `type` then names the
/// dtype it was quantised from), owned elsewhere.
struct weight_matrix {
  dtype type = dtype::f32;
  const void* data = nullptr;
  index_t rows = 0;
  index_t cols = 0;
  weight_format format = weight_format::stored;
  quant_layout layout =
      quant_layout::blocks; // of a quantised matrix's rows (the loader's: groups16)

  template <class T> tensor_view<const T, 2> view() const noexcept { // (rows, cols)
    return make_view(static_cast<const T*>(data), rows, cols);
  }
  /// A quantised matrix's rows: (rows, ceil(cols / 32)) blocks with their layout (no view of
  /// bare blocks: the loader's rows are in the decode layout, which reads as garbage in order).
  template <class Block> quant_rows_view<Block> quant_rows() const noexcept {
    return {make_view(static_cast<const Block*>(data), rows, quant_blocks(cols)), layout};
  }
  bool quantised() const noexcept { return format != weight_format::stored; }
  std::size_t row_bytes() const noexcept {
    return quantised() ? std::size_t(quant_blocks(cols)) * quant_block_bytes(format)
                       : std::size_t(cols) * size_of(type);
  }
  std::size_t bytes() const noexcept { return std::size_t(rows) * row_bytes(); }
};

/// A small parameter vector (norm weight, bias, conv kernel), converted to f32 on load.
using weight_vector = tensor_view<const float, 1>;

struct mixer_weights {
  weight_matrix fc;              // (2E, D) rows [0,E) x, [E,2E) gate
  weight_matrix out_proj;        // (D, E)
  weight_matrix in_proj;         // (2N, E) rows [0,N) r, [N,2N) k
  weight_matrix ch_gate_down;    // (R, E)
  weight_matrix ch_gate_up;      // (E, R)
  weight_matrix mem_gate;        // (2N, E) rows [0,N) selection, [N,2N) temperature
  weight_vector act_norm;        // (E)
  weight_vector conv_weight;     // (E*W) Wc[c, w] at c*W + w; w = W-1 multiplies the current token
  weight_vector conv_bias;       // (E)
  weight_vector residual_weight; // (E)
  weight_vector ch_gate_bias;    // (E)
  weight_vector mem_gate_bias;   // (2N)
};

struct attn_weights {
  weight_matrix q_proj;   // (H d_h, D)
  weight_matrix k_proj;   // (Hk d_h, D)
  weight_matrix v_proj;   // (Hv d_h, D)
  weight_matrix out_proj; // (D, H d_h)
};

struct ffn_weights {
  weight_matrix fc;       // (2F, D) rows [0,F) value, [F,2F) SiLU gate
  weight_matrix out_proj; // (D, F)
};

struct layer_weights {
  weight_vector mixer_norm; // (D)
  mixer_weights mixer;
  // rodimus_plus only:
  weight_vector attn_norm; // (D)
  attn_weights attn;
  weight_vector ffn_norm; // (D)
  ffn_weights ffn;
};

/// Every parameter of a model, as views.
struct model_weight_views {
  weight_matrix embeddings; // (V, D)
  weight_matrix lm_head;    // (V, D): the embeddings when tied
  weight_vector embed_norm; // (D), empty without use_norm_embedding
  weight_vector norm_f;     // (D)
  std::vector<layer_weights> layers;
};

/// Apply `f(weight_matrix&)` and `g(weight_vector&)` to every parameter view of `w` (lm_head only
/// when it is not the embedding matrix): the one list of fields that copies and checks walk.
template <class OnMatrix, class OnVector>
void for_each_weight(model_weight_views& w, bool tied, OnMatrix&& f, OnVector&& g) {
  f(w.embeddings);
  if (!tied) f(w.lm_head);
  if (w.embed_norm.data) g(w.embed_norm);
  g(w.norm_f);
  for (layer_weights& L : w.layers) {
    g(L.mixer_norm);
    // in_proj, mem_gate, ch_gate_down: a copy that places them back to back lets one call read
    // them as one matrix (blocks/common.hpp: stacked_rows; blocks/mixer.hpp).
    for (weight_matrix* m : {&L.mixer.fc, &L.mixer.out_proj, &L.mixer.in_proj, &L.mixer.mem_gate,
                             &L.mixer.ch_gate_down, &L.mixer.ch_gate_up})
      f(*m);
    for (weight_vector* v :
         {&L.mixer.act_norm, &L.mixer.conv_weight, &L.mixer.conv_bias, &L.mixer.residual_weight,
          &L.mixer.ch_gate_bias, &L.mixer.mem_gate_bias})
      g(*v);
    if (L.attn_norm.data) {
      g(L.attn_norm);
      g(L.ffn_norm);
      for (weight_matrix* m : {&L.attn.q_proj, &L.attn.k_proj, &L.attn.v_proj, &L.attn.out_proj,
                               &L.ffn.fc, &L.ffn.out_proj})
        f(*m);
    }
  }
}

} // namespace rodimus
