// The released geometries as config.json objects (`rodimus bench --geometry`, and the tests that
// need a model of a released shape): geometry_by_name gives rodimus-1.4b, rodimus-plus-1.6b or
// rodimus-plus-4b, optionally with fewer layers. Random weights for them come from
// rodimus/model/init.hpp (write_random_checkpoint).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "rodimus/core/error.hpp"

namespace rodimus::cli {

struct geometry {
  std::string name;
  nlohmann::json config;
};

inline geometry geometry_by_name(const std::string& name, long long layers) {
  nlohmann::json c = {{"architectures", {"RodimusForCausalLM"}},
                      {"model_type", "rodimus"},
                      {"vocab_size", 126464},
                      {"norm_epsilon", 1e-5},
                      {"residual_in_fp32", true},
                      {"initializer_range", 0.02},
                      {"rescale_prenorm_residual", true},
                      {"use_norm_embedding", false},
                      {"use_scale_embedding", false},
                      {"max_position_embeddings", 4096},
                      {"bos_token_id", 126080},
                      {"eos_token_id", 126081}};
  if (name == "rodimus-1.4b") {
    c["block_type"] = "rodimus";
    c["d_model"] = 2048;
    c["n_layer"] = 48;
    c["tie_word_embeddings"] = true;
    c["mixer_cfg"] = {{"expand_ratio", 2.0}, {"mem_size", 64}, {"input_gate_low_rank", "auto"}};
    c["max_position_embeddings"] = 2048;
  } else if (name == "rodimus-plus-1.6b" || name == "rodimus-plus-4b") {
    const bool big = name == "rodimus-plus-4b";
    c["block_type"] = "rodimus_plus";
    c["d_model"] = big ? 3072 : 2048;
    c["n_layer"] = big ? 32 : 24;
    c["tie_word_embeddings"] = !big;
    c["mixer_cfg"] = {{"expand_ratio", 2.0},
                      {"mem_size", 64},
                      {"input_gate_low_rank", "auto"},
                      {"normalize_epsilon", 1e-5}};
    c["attn_cfg"] = {{"num_heads", big ? 24 : 16},   {"num_heads_k", 1},
                     {"num_heads_v", big ? 24 : 16}, {"window_size", 4096},
                     {"rotary_emb_dim", -1},         {"ffn_expand_ratio", 4.0 / 3.0}};
  } else {
    throw error("--geometry: unknown geometry '" + name +
                "', expected rodimus-1.4b, rodimus-plus-1.6b or rodimus-plus-4b");
  }
  if (layers > 0) c["n_layer"] = layers;
  return {name, c};
}

} // namespace rodimus::cli
