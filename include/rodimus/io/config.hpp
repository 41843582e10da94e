// config.json of a Rodimus / Rodimus+ checkpoint (Hugging Face layout) -> rodimus::model_config.
//
// Real checkpoints store only the keys that differ from the reference configuration class, so every
// missing key takes that class's default (docs/MODEL.md §11.4). Validation is strict: a key of the
// wrong JSON type, a size that is zero or negative, or values that do not fit together (heads not
// dividing d_model, num_heads not divisible by num_heads_k / num_heads_v, unknown block_type, ...)
// throw rodimus::error naming the file, the key, what was expected and what was found. Keys the
// model does not use (dropout, initializer_range, use_cache, ...) are ignored.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "rodimus/core/error.hpp"
#include "rodimus/io/json_brief.hpp"
#include "rodimus/io/json_fields.hpp"
#include "rodimus/io/json_strict.hpp"
#include "rodimus/io/text_file.hpp"
#include "rodimus/model/config.hpp"

namespace rodimus::io {

namespace detail {

/// The largest size (and derived size) a configuration may ask for; keeps every product of sizes
/// far from overflowing int64.
constexpr std::int64_t max_config_size = std::int64_t(1) << 24;

/// The largest config.json read (a real one is a few kilobytes).
constexpr std::uint64_t max_config_bytes = 16u * 1000u * 1000u;

/// d * ratio as the reference computes int(d * ratio), or -1 when it is out of range.
inline std::int64_t scaled_size(std::int64_t d, double ratio) {
  const double x = double(d) * ratio;
  if (!(x >= 0.0) || x > double(max_config_size)) return -1;
  return std::int64_t(x);
}

class config_reader {
public:
  config_reader(const nlohmann::json& j, std::string source, std::string prefix)
      : j_(j), source_(std::move(source)), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& expected,
                         const std::string& found) const {
    throw error(source_ + ": config key '" + prefix_ + key + "': expected " + expected +
                ", found " + found);
  }
  static std::string show(const nlohmann::json& v) { return brief_json(v, 60); }
  /// A key that is absent or null is not present (the rule of every reader: io/json_fields.hpp).
  bool present(const std::string& key) const { return optional_member(j_, key.c_str()) != nullptr; }
  const nlohmann::json& raw(const std::string& key) const { return j_[key]; }

  /// An integer (JSON integer, or a float with an integral value) >= min_value.
  std::int64_t integer(const std::string& key, std::int64_t fallback,
                       std::int64_t min_value) const {
    if (!present(key)) return fallback;
    return to_integer(key, j_[key], min_value);
  }
  std::int64_t to_integer(const std::string& key, const nlohmann::json& v,
                          std::int64_t min_value) const {
    std::int64_t x = 0;
    if (v.is_number_integer()) {
      x = v.get<std::int64_t>();
    } else if (v.is_number_float()) {
      const double d = v.get<double>();
      if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15)
        fail(key, "an integer", show(v));
      x = std::int64_t(d);
    } else {
      fail(key, "an integer", show(v));
    }
    if (x < min_value) fail(key, "an integer >= " + std::to_string(min_value), show(v));
    if (x > max_config_size)
      fail(key, "an integer <= " + std::to_string(max_config_size) + " (a sane model size)",
           show(v));
    return x;
  }
  /// A finite number > 0.
  double positive(const std::string& key, double fallback) const {
    if (!present(key)) return fallback;
    const nlohmann::json& v = j_[key];
    if (!v.is_number()) fail(key, "a positive number", show(v));
    const double d = v.get<double>();
    if (!std::isfinite(d) || !(d > 0)) fail(key, "a positive number", show(v));
    return d;
  }
  bool boolean(const std::string& key, bool fallback) const {
    if (!present(key)) return fallback;
    const nlohmann::json& v = j_[key];
    if (!v.is_boolean()) fail(key, "true or false", show(v));
    return v.get<bool>();
  }
  std::string string(const std::string& key, const std::string& fallback) const {
    if (!present(key)) return fallback;
    const nlohmann::json& v = j_[key];
    if (!v.is_string()) fail(key, "a string", show(v));
    return v.get<std::string>();
  }
  /// A nested object (absent or null -> empty object).
  nlohmann::json object(const std::string& key) const {
    if (!present(key)) return nlohmann::json::object();
    const nlohmann::json& v = j_[key];
    if (!v.is_object()) fail(key, "a JSON object", show(v));
    return v;
  }

private:
  const nlohmann::json& j_;
  std::string source_;
  std::string prefix_;
};

} // namespace detail

/// Parse a config.json document. `source` names it in error messages.
inline model_config parse_config(const nlohmann::json& j,
                                 const std::string& source = "config.json") {
  if (!j.is_object())
    throw error(source + ": expected a JSON object, found " + detail::config_reader::show(j));
  detail::config_reader top(j, source, "");
  model_config c;

  if (!j.contains("model_type")) top.fail("model_type", "\"rodimus\"", "no such key");
  const std::string model_type = top.string("model_type", "");
  if (model_type != "rodimus")
    top.fail("model_type", "\"rodimus\"", detail::config_reader::show(j["model_type"]));

  const std::string block = top.string("block_type", "rodimus");
  if (block == "rodimus") {
    c.block_type = block_kind::rodimus;
  } else if (block == "rodimus_plus") {
    c.block_type = block_kind::rodimus_plus;
  } else {
    top.fail("block_type", "\"rodimus\" or \"rodimus_plus\"",
             detail::config_reader::show(j["block_type"]));
  }
  c.d_model = top.integer("d_model", c.d_model, 1);
  c.n_layer = top.integer("n_layer", c.n_layer, 1);
  c.vocab_size = top.integer("vocab_size", c.vocab_size, 1);
  c.norm_epsilon = top.positive("norm_epsilon", c.norm_epsilon);
  c.tie_word_embeddings = top.boolean("tie_word_embeddings", c.tie_word_embeddings);
  c.use_scale_embedding = top.boolean("use_scale_embedding", c.use_scale_embedding);
  c.use_norm_embedding = top.boolean("use_norm_embedding", c.use_norm_embedding);
  c.residual_in_fp32 = top.boolean("residual_in_fp32", c.residual_in_fp32);
  c.max_position_embeddings = top.integer("max_position_embeddings", c.max_position_embeddings, 1);
  // Token ids are informational (some configs store lists): read plain integers only.
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer())
    c.bos_token_id = j["bos_token_id"].get<std::int64_t>();
  if (j.contains("eos_token_id") && j["eos_token_id"].is_number_integer())
    c.eos_token_id = j["eos_token_id"].get<std::int64_t>();

  // ---- mixer_cfg ----
  const nlohmann::json mixer_json = top.object("mixer_cfg");
  detail::config_reader mix(mixer_json, source, "mixer_cfg.");
  c.mem_size = mix.integer("mem_size", c.mem_size, 1);
  c.expand_ratio = mix.positive("expand_ratio", c.expand_ratio);
  c.d_conv = mix.integer("d_conv", c.d_conv, 1);
  if (mix.present("input_gate_low_rank")) {
    const nlohmann::json& v = mix.raw("input_gate_low_rank");
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      if (s == "auto") {
        c.input_gate_low_rank = 0;
      } else {
        std::int64_t x = 0;
        std::size_t used = 0;
        try {
          x = std::stoll(s, &used);
        } catch (...) {
          used = 0;
        }
        if (used == 0 || used != s.size() || x < 1)
          mix.fail("input_gate_low_rank", "\"auto\", a positive integer or a numeric string",
                   detail::config_reader::show(v));
        c.input_gate_low_rank = x;
      }
    } else {
      if (!v.is_number())
        mix.fail("input_gate_low_rank", "\"auto\", a positive integer or a numeric string",
                 detail::config_reader::show(v));
      c.input_gate_low_rank = mix.to_integer("input_gate_low_rank", v, 1);
    }
  }
  c.normalize_epsilon = mix.positive("normalize_epsilon", c.normalize_epsilon);
  (void)mix.string("mode", "fused_chunk"); // the kernel choice; the maths is the same

  const std::int64_t E = detail::scaled_size(c.d_model, c.expand_ratio);
  if (E < 1)
    mix.fail("expand_ratio",
             "a ratio giving d_inner in [1, " + std::to_string(detail::max_config_size) +
                 "] with d_model " + std::to_string(c.d_model),
             detail::config_reader::show(mixer_json.value("expand_ratio", nlohmann::json(2.0))));

  // ---- attn_cfg ----
  const nlohmann::json attn_json = top.object("attn_cfg");
  detail::config_reader att(attn_json, source, "attn_cfg.");
  c.num_heads = att.integer("num_heads", 0, 1);
  c.num_heads_k = att.integer("num_heads_k", 0, 1);
  c.num_heads_v = att.integer("num_heads_v", 0, 1);
  c.window_size = att.present("window_size")
                      ? att.integer("window_size", 0, std::numeric_limits<std::int64_t>::min())
                      : 0;
  if (c.window_size < 0) c.window_size = 0;
  c.rotary_emb_dim = att.integer("rotary_emb_dim", -1, -1);
  c.rotary_emb_base = att.positive("rotary_emb_base", c.rotary_emb_base);
  c.ffn_expand_ratio = att.positive("ffn_expand_ratio", c.ffn_expand_ratio);

  if (c.is_plus()) {
    if (!att.present("num_heads_k"))
      att.fail("num_heads_k", "a positive integer (required for rodimus_plus)", "no value");
    if (!att.present("num_heads_v"))
      att.fail("num_heads_v", "a positive integer (required for rodimus_plus)", "no value");
    const std::int64_t H = c.heads();
    if (H < 1)
      att.fail("num_heads",
               "a positive integer (the default d_model // 128 is 0 for d_model " +
                   std::to_string(c.d_model) + ")",
               "null");
    if (c.d_model % H != 0)
      att.fail("num_heads", "a divisor of d_model " + std::to_string(c.d_model), std::to_string(H));
    if (H % c.num_heads_k != 0)
      att.fail("num_heads_k", "a divisor of num_heads " + std::to_string(H),
               std::to_string(c.num_heads_k));
    if (H % c.num_heads_v != 0)
      att.fail("num_heads_v", "a divisor of num_heads " + std::to_string(H),
               std::to_string(c.num_heads_v));
    const std::int64_t dh = c.head_dim();
    if (c.rotary_emb_dim > dh || (c.rotary_emb_dim > 0 && c.rotary_emb_dim % 2 != 0))
      att.fail("rotary_emb_dim", "-1, 0 or an even number <= head dim " + std::to_string(dh),
               std::to_string(c.rotary_emb_dim));
    if (detail::scaled_size(c.d_model, c.ffn_expand_ratio) < 1)
      att.fail("ffn_expand_ratio",
               "a ratio giving an FFN size in [1, " + std::to_string(detail::max_config_size) +
                   "] with d_model " + std::to_string(c.d_model),
               detail::config_reader::show(
                   attn_json.value("ffn_expand_ratio", nlohmann::json(4.0 / 3.0))));
    if (att.present("softmax_scale"))
      att.fail("softmax_scale", "null (the 'norm' and explicit-scale variants are not supported)",
               detail::config_reader::show(attn_json["softmax_scale"]));
    if (att.present("rotary_emb_scale_base"))
      att.fail("rotary_emb_scale_base", "null (xPos is not supported)",
               detail::config_reader::show(attn_json["rotary_emb_scale_base"]));
  }
  return c;
}

/// Parse config.json text.
inline model_config parse_config_text(const std::string& text,
                                      const std::string& source = "config.json") {
  return parse_config(detail::parse_json_strict(text.data(), text.data() + text.size(), source,
                                                "the model configuration", 16),
                      source);
}

/// Read `path` (a config.json file, or a checkpoint directory holding one).
inline model_config load_config(const std::string& path) {
  std::error_code ec;
  const std::string file = std::filesystem::is_directory(path, ec) ? path + "/config.json" : path;
  return parse_config_text(detail::read_text_file(file, detail::max_config_bytes,
                                                  "the model configuration (config.json)"),
                           file);
}

} // namespace rodimus::io
