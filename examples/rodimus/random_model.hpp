// Random-weight checkpoints of the released geometries (docs/MODEL.md §8 init), written by
// `rodimus bench` and by the tests that need a model of a given shape.
//
// geometry_by_name gives the config.json of rodimus-1.4b, rodimus-plus-1.6b or rodimus-plus-4b
// (optionally with fewer layers); write_random_model writes config.json and model.safetensors with
// weights initialised as docs/MODEL.md §8 describes (N(0, 0.02) projections and embeddings,
// out_proj rescaled by 1/sqrt(n_res * L), Xavier-uniform gain 2^-2.5 mixer-internal weights, the
// DDTS bias inits, conv U(-0.5, 0.5), norms 1). Normal draws use a sum of four uniforms (an
// approximate normal, bounded at 3.5 sigma): fast enough for billions of parameters, the same scale
// as the reference init.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rodimus/core/error.hpp"
#include "rodimus/io/atomic_file.hpp"
#include "rodimus/io/config.hpp"
#include "rodimus/io/safetensors.hpp"
#include "rodimus/model/weights.hpp"

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

/// xorshift64*: fast and good enough for weights.
struct fast_rng {
  std::uint64_t s;
  explicit fast_rng(std::uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull) {}
  std::uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545f4914f6cdd1dull;
  }
  float uniform() { return float(next() >> 40) * (1.0f / 16777216.0f); } // [0, 1)
  /// Approximately N(0, 1): the sum of four uniforms, centred and scaled to unit variance.
  float normal() {
    const std::uint64_t a = next(), b = next();
    const float u =
        float(a >> 40) + float((a >> 16) & 0xffffff) + float(b >> 40) + float((b >> 16) & 0xffffff);
    return (u * (1.0f / 16777216.0f) - 2.0f) * 1.7320508f;
  }
};

enum class init_kind { normal, uniform, constant, sel_bias, tau_bias };
struct init_rule {
  init_kind kind = init_kind::normal;
  float a = 0.0f; // std, bound or value
};

/// docs/MODEL.md §8 for one tensor name.
inline init_rule rule_for(const std::string& name, const model_config& cfg,
                          const std::vector<std::int64_t>& shape) {
  const auto ends = [&](const char* s) {
    const std::string t = s;
    return name.size() >= t.size() && name.compare(name.size() - t.size(), t.size(), t) == 0;
  };
  const float n_res = cfg.is_plus() ? 3.0f : 1.0f;
  if (ends("norm.weight") || ends("residual_weight") || ends("norm_f.weight"))
    return {init_kind::constant, 1.0f};
  if (ends("short_conv.conv1d.weight") || ends("short_conv.conv1d.bias"))
    return {init_kind::uniform, 0.5f};
  if (ends("ch_gate_proj.1.bias")) return {init_kind::constant, 0.0f};
  if (ends("mem_gate_proj.bias")) return {init_kind::sel_bias, 0.0f};
  if (ends("in_proj.weight") || ends("mem_gate_proj.weight") || ends("ch_gate_proj.0.weight") ||
      ends("ch_gate_proj.1.weight")) {
    const double fan_out = double(shape[0]), fan_in = double(shape[1]);
    return {init_kind::uniform, float(std::pow(2.0, -2.5) * std::sqrt(6.0 / (fan_in + fan_out)))};
  }
  if (ends("out_proj.weight"))
    return {init_kind::normal, float(0.02 / std::sqrt(double(n_res) * double(cfg.n_layer)))};
  return {init_kind::normal, 0.02f};
}

inline void fill_tensor(std::vector<float>& out, const init_rule& r, std::int64_t mem,
                        std::uint64_t seed) {
  fast_rng g(seed);
  switch (r.kind) {
  case init_kind::constant: std::fill(out.begin(), out.end(), r.a); break;
  case init_kind::uniform:
    for (auto& x : out)
      x = (2.0f * g.uniform() - 1.0f) * r.a;
    break;
  case init_kind::normal:
    for (auto& x : out)
      x = g.normal() * r.a;
    break;
  case init_kind::sel_bias:
  case init_kind::tau_bias:
    // [0, N): softplus^-1(rho), rho log-uniform in [1e-3, 1e-1]; [N, 2N): logit(U(1/16, 0.9)).
    for (std::int64_t i = 0; i < std::int64_t(out.size()); ++i) {
      if (i < mem) {
        const double rho = std::max(
            1e-4, std::exp(g.uniform() * (std::log(0.1) - std::log(0.001)) + std::log(0.001)));
        out[std::size_t(i)] = float(rho + std::log(-std::expm1(-rho)));
      } else {
        const double tau = 1.0 / 16.0 + g.uniform() * (0.9 - 1.0 / 16.0);
        out[std::size_t(i)] = float(std::log(tau / (1.0 - tau)));
      }
    }
    break;
  }
}

/// Write config.json and model.safetensors (streamed, tensor by tensor) into dir, each file
/// replaced all at once (io::atomic_file): an interrupted run leaves no half-written checkpoint.
inline void write_random_model(const std::string& dir, const nlohmann::json& config, dtype type) {
  std::filesystem::create_directories(dir);
  const model_config cfg = io::parse_config_text(config.dump(), dir + "/config.json");
  const auto tensors = expected_tensors(cfg);
  nlohmann::json header = nlohmann::json::object();
  std::size_t offset = 0;
  std::vector<std::size_t> sizes;
  for (const auto& t : tensors) {
    std::size_t n = 1;
    for (auto d : t.shape)
      n *= std::size_t(d);
    // 1-D vectors (norms, biases) stay f32, as the reference stores its f32 parameters.
    const dtype dt =
        t.shape.size() >= 2 && t.name.find("short_conv") == std::string::npos ? type : dtype::f32;
    header[t.name] = {{"dtype", io::safetensors_dtype_name(dt)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + n * size_of(dt)}}};
    offset += n * size_of(dt);
    sizes.push_back(n);
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0)
    h += ' ';
  io::atomic_file f(dir + "/model.safetensors");
  unsigned char len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = static_cast<unsigned char>(std::uint64_t(h.size()) >> (8 * i));
  f.write(len, 8);
  f.write(h);
  std::vector<float> vals;
  std::vector<std::uint16_t> half;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    const std::string dts = header[t.name]["dtype"];
    vals.assign(sizes[i], 0.0f);
    fill_tensor(vals, rule_for(t.name, cfg, t.shape), cfg.mem_size, 1000 + i);
    if (dts == "F32") {
      f.write(vals.data(), vals.size() * 4);
    } else {
      half.resize(vals.size());
      for (std::size_t j = 0; j < vals.size(); ++j)
        half[j] = bf16::from_float(vals[j]);
      f.write(half.data(), half.size() * 2);
    }
  }
  f.commit();
  io::atomic_file c(dir + "/config.json");
  c.write(config.dump(2) + "\n");
  c.commit();
}

} // namespace rodimus::cli
