// The hyper-parameters of a Rodimus / Rodimus+ model (docs/MODEL.md §1, §2.1, §5, §7.1, §11.4) and
// the sizes derived from them. io/config.hpp fills it from a Hugging Face config.json, applying the
// reference configuration class's defaults for every missing key.
//
//   E  = d_inner          = align8(int(D * expand_ratio))            (truncate, then round up to 8)
//   R  = low rank         = max(D // 64, 16) for "auto", else the given number
//   F  = FFN hidden size  = align8(int(D * ffn_expand_ratio))         (rodimus_plus)
//   d_h = head dim        = D / H,  H = num_heads (null -> D // 128)
//   window_left           = window_size // 2 (window_size <= 0 or null -> -1, unbounded causal)
//   rotary_dim            = rotary_emb_dim (-1 -> d_h, 0 -> off)
//   embed_scale           = sqrt(mem_size) when use_scale_embedding, else 1
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

namespace rodimus {

enum class block_kind : unsigned char { rodimus, rodimus_plus };

inline const char* to_string(block_kind b) noexcept {
  return b == block_kind::rodimus ? "rodimus" : "rodimus_plus";
}

struct model_config {
  // ---- as read (defaults of the reference configuration class applied) ----
  block_kind block_type = block_kind::rodimus;
  std::int64_t d_model = 2048;
  std::int64_t n_layer = 24;
  std::int64_t vocab_size = 50277;
  double norm_epsilon = 1e-5;
  bool tie_word_embeddings = false;
  bool use_scale_embedding = false;
  bool use_norm_embedding = false;
  bool residual_in_fp32 = true;
  std::int64_t max_position_embeddings = 2048; // informational; caps an unbounded attention window

  // mixer_cfg
  std::int64_t mem_size = 64; // N
  double expand_ratio = 2.0;
  std::int64_t d_conv = 4;
  std::int64_t input_gate_low_rank = 0; // 0 = "auto"
  double normalize_epsilon = 1e-12;

  // attn_cfg (rodimus_plus)
  std::int64_t num_heads = 0;       // 0 = null -> D // 128
  std::int64_t num_heads_k = 0;     // required for rodimus_plus
  std::int64_t num_heads_v = 0;     // required for rodimus_plus
  std::int64_t window_size = 0;     // <= 0: unbounded causal
  std::int64_t rotary_emb_dim = -1; // -1 -> d_h, 0 -> off
  double rotary_emb_base = 10000.0;
  double ffn_expand_ratio = 4.0 / 3.0;

  // token ids (informational)
  std::int64_t bos_token_id = -1;
  std::int64_t eos_token_id = -1;

  // ---- derived ----
  static constexpr std::int64_t align8(std::int64_t n) noexcept { return (n + 7) / 8 * 8; }

  bool is_plus() const noexcept { return block_type == block_kind::rodimus_plus; }
  std::int64_t d_inner() const noexcept { // E
    return align8(std::int64_t(double(d_model) * expand_ratio));
  }
  std::int64_t low_rank() const noexcept { // R
    if (input_gate_low_rank > 0) return input_gate_low_rank;
    const std::int64_t r = d_model / 64;
    return r > 16 ? r : 16;
  }
  std::int64_t ffn_hidden() const noexcept { // F
    return align8(std::int64_t(double(d_model) * ffn_expand_ratio));
  }
  std::int64_t heads() const noexcept { return num_heads > 0 ? num_heads : d_model / 128; }
  std::int64_t heads_k() const noexcept { return num_heads_k; }
  std::int64_t heads_v() const noexcept { return num_heads_v; }
  std::int64_t head_dim() const noexcept {
    const std::int64_t h = heads();
    return h > 0 ? d_model / h : 0;
  }
  std::int64_t window_left() const noexcept { return window_size > 0 ? window_size / 2 : -1; }
  std::int64_t rotary_dim() const noexcept {
    return rotary_emb_dim < 0 ? head_dim() : rotary_emb_dim;
  }
  float embed_scale() const noexcept {
    return use_scale_embedding ? float(std::sqrt(double(mem_size))) : 1.0f;
  }
  float gla_scale() const noexcept { return float(1.0 / std::sqrt(double(mem_size))); }
  float attn_scale() const noexcept { return float(1.0 / std::sqrt(double(head_dim()))); }

  /// Key/value positions one sequence keeps for attention: window_left + 1 (the current token and
  /// window_left before it); with an unbounded window, max_position_embeddings.
  std::int64_t attn_ring_size() const noexcept {
    return window_left() >= 0 ? window_left() + 1 : max_position_embeddings;
  }
};

} // namespace rodimus
