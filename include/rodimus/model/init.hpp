// Random weights for a model of any configuration, drawn as docs/MODEL.md §8 describes, and the
// checkpoint folder that holds them: what `rodimus bench` measures and the tests that need a model
// of a given shape load.
//
//   write_random_checkpoint(dir, config_json_text, dtype::bf16, /*seed=*/0);
//   auto w = model_weights::load(dir);
//
// The distributions (init_rule_for, by tensor name): N(0, 0.02) projections and embeddings,
// out_proj rescaled by 1/sqrt(n_res * L), Xavier-uniform gain 2^-2.5 mixer-internal weights, the
// DDTS bias inits of mem_gate_proj.bias, conv weight and bias U(-0.5, 0.5), norms and residual
// weights 1, ch_gate_proj.1.bias 0. Normal draws use a sum of four uniforms (an approximate normal,
// bounded at 3.5 sigma): fast enough for billions of parameters, the same scale as the reference
// init. Every value follows from the seed and the tensor's place in expected_tensors: the same
// seed and configuration give the same bytes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "rodimus/core/dtype.hpp"
#include "rodimus/core/error.hpp"
#include "rodimus/io/atomic_file.hpp"
#include "rodimus/io/checkpoint.hpp"
#include "rodimus/io/config.hpp"
#include "rodimus/io/safetensors.hpp"
#include "rodimus/model/weights.hpp"

namespace rodimus {

/// xorshift64*: fast and good enough for weights (and for random token ids).
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

/// normal: N(0, a); uniform: U(-a, a); constant: a; ddts_bias: the DDTS gate biases of
/// mem_gate_proj.bias (docs/MODEL.md §8).
enum class init_kind { normal, uniform, constant, ddts_bias };
struct init_rule {
  init_kind kind = init_kind::normal;
  float a = 0.0f; // std, bound or value
};

/// The distribution of the tensor `name` (of `shape`) in a model of configuration `cfg`.
inline init_rule init_rule_for(const std::string& name, const model_config& cfg,
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
  if (ends("mem_gate_proj.bias")) return {init_kind::ddts_bias, 0.0f};
  if (ends("in_proj.weight") || ends("mem_gate_proj.weight") || ends("ch_gate_proj.0.weight") ||
      ends("ch_gate_proj.1.weight")) {
    const double fan_out = double(shape[0]), fan_in = double(shape[1]);
    return {init_kind::uniform, float(std::pow(2.0, -2.5) * std::sqrt(6.0 / (fan_in + fan_out)))};
  }
  if (ends("out_proj.weight"))
    return {init_kind::normal, float(0.02 / std::sqrt(double(n_res) * double(cfg.n_layer)))};
  return {init_kind::normal, 0.02f};
}

/// Fill `out` with draws of rule `r` from the generator seeded with `seed`; `mem` is the memory
/// size N (the ddts_bias rule's first N values are the inverse softplus of the selection rate, the
/// next N the logit of the temperature).
inline void fill_init(std::vector<float>& out, const init_rule& r, std::int64_t mem,
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
  case init_kind::ddts_bias:
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

/// The dtype a random checkpoint stores tensor `t` in: `type` for the matrices; f32 for vectors
/// (norms, biases) and the conv weights, as the reference stores its f32 parameters.
inline dtype random_tensor_dtype(const expected_tensor& t, dtype type) {
  return t.shape.size() >= 2 && t.name.find("short_conv") == std::string::npos ? type : dtype::f32;
}

/// The values of tensor number `index` of expected_tensors(cfg) (`t`) for `seed`.
inline std::vector<float> random_tensor_values(const model_config& cfg, const expected_tensor& t,
                                               std::size_t index, std::uint64_t seed) {
  std::size_t n = 1;
  for (auto d : t.shape)
    n *= std::size_t(d);
  std::vector<float> v(n, 0.0f);
  // Seed 0 draws what `rodimus bench` has always drawn (tensor i from generator 1000 + i).
  fill_init(v, init_rule_for(t.name, cfg, t.shape), cfg.mem_size,
            (seed << 32) + 1000 + std::uint64_t(index));
  return v;
}

/// Write a checkpoint folder `dir` (created when missing): config.json holding `config_json` as
/// given, and model.safetensors with every tensor of that configuration (expected_tensors, in that
/// order) drawn from `seed` (random_tensor_values), matrices stored as `type` (f32 or bf16), the
/// rest f32. model.safetensors is streamed one tensor at a time (io::safetensors_writer) and each
/// file replaced all at once, model.safetensors first: an interrupted run leaves no half-written
/// file, and never a config.json of a new configuration beside old weights. Throws rodimus::error
/// on a bad configuration (naming config.json in `dir`), a `type` other than f32 or bf16, or a
/// file that cannot be written.
inline void write_random_checkpoint(const std::string& dir, const std::string& config_json,
                                    dtype type, std::uint64_t seed = 0) {
  if (type != dtype::f32 && type != dtype::bf16)
    throw error(std::string("write_random_checkpoint: matrices are stored as f32 or bf16, not ") +
                io::safetensors_dtype_name(type));
  const std::string config_path = dir + "/config.json";
  const model_config cfg = io::parse_config_text(config_json, config_path);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw error(dir + ": cannot create the checkpoint folder: " + ec.message());
  const std::vector<expected_tensor> tensors = expected_tensors(cfg);
  std::vector<io::tensor_to_write> layout;
  for (const auto& t : tensors)
    layout.push_back({t.name, random_tensor_dtype(t, type), t.shape});
  io::safetensors_writer f(dir + "/" + io::checkpoint::single_file_name, layout);
  std::vector<std::uint16_t> half;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const std::vector<float> v = random_tensor_values(cfg, tensors[i], i, seed);
    if (layout[i].type == dtype::f32) {
      f.write_next(v.data(), v.size() * sizeof(float));
    } else {
      half.resize(v.size());
      for (std::size_t j = 0; j < v.size(); ++j)
        half[j] = bf16::from_float(v[j]);
      f.write_next(half.data(), half.size() * sizeof(std::uint16_t));
    }
  }
  f.commit();
  io::write_file_atomically(config_path, config_json.data(), config_json.size());
}

} // namespace rodimus
