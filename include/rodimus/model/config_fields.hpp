// Every field of a model_config as "name=value" text, one per line, in a fixed order: how a saved
// state records the model it belongs to (state.hpp), so a state of another model with the same
// tensor shapes is refused rather than loaded. Doubles are written with 17 significant digits, so
// equal text means equal values.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "rodimus/model/config.hpp"

namespace rodimus {

/// (name, value) of every field of `c`, as text.
inline std::vector<std::pair<std::string, std::string>> config_fields(const model_config& c) {
  auto num = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return std::string(buf);
  };
  auto i = [](std::int64_t v) { return std::to_string(v); };
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  return {{"block_type", to_string(c.block_type)},
          {"d_model", i(c.d_model)},
          {"n_layer", i(c.n_layer)},
          {"vocab_size", i(c.vocab_size)},
          {"norm_epsilon", num(c.norm_epsilon)},
          {"tie_word_embeddings", b(c.tie_word_embeddings)},
          {"use_scale_embedding", b(c.use_scale_embedding)},
          {"use_norm_embedding", b(c.use_norm_embedding)},
          {"residual_in_fp32", b(c.residual_in_fp32)},
          {"max_position_embeddings", i(c.max_position_embeddings)},
          {"mem_size", i(c.mem_size)},
          {"expand_ratio", num(c.expand_ratio)},
          {"d_conv", i(c.d_conv)},
          {"input_gate_low_rank", i(c.input_gate_low_rank)},
          {"normalize_epsilon", num(c.normalize_epsilon)},
          {"num_heads", i(c.num_heads)},
          {"num_heads_k", i(c.num_heads_k)},
          {"num_heads_v", i(c.num_heads_v)},
          {"window_size", i(c.window_size)},
          {"rotary_emb_dim", i(c.rotary_emb_dim)},
          {"rotary_emb_base", num(c.rotary_emb_base)},
          {"ffn_expand_ratio", num(c.ffn_expand_ratio)},
          {"bos_token_id", i(c.bos_token_id)},
          {"eos_token_id", i(c.eos_token_id)}};
}

/// config_fields as text: "name=value\n" per field.
inline std::string config_fields_text(const model_config& c) {
  std::string out;
  for (const auto& [name, value] : config_fields(c))
    out += name + "=" + value + "\n";
  return out;
}

/// The first line where two config_fields_text texts differ, as "<line of a> vs <line of b>"
/// (a missing line reads "(nothing)"); empty when they are equal.
inline std::string first_config_difference(const std::string& a, const std::string& b) {
  auto lines = [](const std::string& s) {
    std::vector<std::string> out;
    for (std::size_t at = 0; at < s.size();) {
      const std::size_t end = std::min(s.find('\n', at), s.size());
      out.push_back(s.substr(at, end - at));
      at = end + 1;
    }
    return out;
  };
  const std::vector<std::string> la = lines(a), lb = lines(b);
  for (std::size_t i = 0; i < std::max(la.size(), lb.size()); ++i) {
    const std::string x = i < la.size() ? la[i] : "(nothing)";
    const std::string y = i < lb.size() ? lb[i] : "(nothing)";
    if (x != y) return x + " vs " + y;
  }
  return {};
}

} // namespace rodimus
