// libFuzzer target: config.json parsing. Only rodimus::error may escape the parser, and what it
// accepts must give consistent derived sizes (which UBSan checks for overflowing conversions).
// Two modes, chosen by the first byte:
//   '#'  structured: start from a valid config and apply edits decoded from the remaining bytes
//        (set a known key to an extreme integer, double, string, null, bool, array, or erase it),
//        then io::parse_config on the JSON value; this reaches numeric edge cases quickly;
//   else the bytes are config.json text for io::parse_config_text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "rodimus/core/error.hpp"
#include "rodimus/io/config.hpp"

namespace {

const char* const base_configs[] = {
    R"({"model_type":"rodimus","block_type":"rodimus","d_model":64,"n_layer":2,"vocab_size":100})",
    R"({"model_type":"rodimus","block_type":"rodimus_plus","d_model":128,"n_layer":2,"vocab_size":200,
        "tie_word_embeddings":true,"use_scale_embedding":true,"use_norm_embedding":true,
        "mixer_cfg":{"expand_ratio":1.5,"input_gate_low_rank":24,"mem_size":32},
        "attn_cfg":{"ffn_expand_ratio":2.0,"num_heads":4,"num_heads_k":1,"num_heads_v":2,
                    "rotary_emb_dim":16,"window_size":48}})"};

// (section, key): section "" is the top level.
const char* const keys[][2] = {{"", "model_type"},
                               {"", "block_type"},
                               {"", "d_model"},
                               {"", "n_layer"},
                               {"", "vocab_size"},
                               {"", "norm_epsilon"},
                               {"", "tie_word_embeddings"},
                               {"", "use_scale_embedding"},
                               {"", "use_norm_embedding"},
                               {"", "residual_in_fp32"},
                               {"", "max_position_embeddings"},
                               {"", "bos_token_id"},
                               {"", "eos_token_id"},
                               {"", "mixer_cfg"},
                               {"", "attn_cfg"},
                               {"mixer_cfg", "mem_size"},
                               {"mixer_cfg", "expand_ratio"},
                               {"mixer_cfg", "d_conv"},
                               {"mixer_cfg", "input_gate_low_rank"},
                               {"mixer_cfg", "normalize_epsilon"},
                               {"mixer_cfg", "mode"},
                               {"attn_cfg", "num_heads"},
                               {"attn_cfg", "num_heads_k"},
                               {"attn_cfg", "num_heads_v"},
                               {"attn_cfg", "window_size"},
                               {"attn_cfg", "rotary_emb_dim"},
                               {"attn_cfg", "rotary_emb_base"},
                               {"attn_cfg", "ffn_expand_ratio"},
                               {"attn_cfg", "softmax_scale"},
                               {"attn_cfg", "rotary_emb_scale_base"}};
constexpr std::size_t n_keys = sizeof(keys) / sizeof(keys[0]);

struct reader {
  const std::uint8_t* p;
  std::size_t n;
  bool empty() const { return n == 0; }
  std::uint8_t byte() {
    if (!n) return 0;
    --n;
    return *p++;
  }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v = (v << 8) | byte();
    return v;
  }
};

nlohmann::json value_from(reader& r) {
  static const double specials[] = {0.0,      -0.0,   0.5,    1.0,     1e-300,
                                    1e300,    -1e300, 9.3e18, -9.3e18, 1.8446744073709552e19,
                                    4.9e-324, 2.5,    1e15,   127.9};
  static const char* const strings[] = {"auto",
                                        "12",
                                        "0",
                                        "-3",
                                        "x",
                                        "",
                                        "rodimus",
                                        "rodimus_plus",
                                        "1e3",
                                        " 7",
                                        "99999999999999999999",
                                        "fused_chunk"};
  switch (r.byte() % 10) {
  case 0: return std::int64_t(r.u64());
  case 1: {
    const std::uint64_t b = r.u64();
    double d;
    std::memcpy(&d, &b, 8);
    return d;
  }
  case 2: return int(r.byte()) - 8;
  case 3: return strings[r.byte() % (sizeof(strings) / sizeof(strings[0]))];
  case 4: return nullptr;
  case 5: return bool(r.byte() & 1);
  case 6: return r.u64();
  case 7: return specials[r.byte() % (sizeof(specials) / sizeof(specials[0]))];
  case 8: return nlohmann::json::array({int(r.byte())});
  default: return nlohmann::json::object();
  }
}

void check_accepted(const rodimus::model_config& c) {
  if (c.d_model < 1 || c.n_layer < 1 || c.vocab_size < 1 || c.mem_size < 1) std::abort();
  if (c.d_inner() < 1 || c.low_rank() < 1) std::abort();
  if (c.is_plus()) {
    if (c.heads() < 1 || c.d_model % c.heads() != 0 || c.heads_k() < 1 || c.heads_v() < 1 ||
        c.heads() % c.heads_k() != 0 || c.heads() % c.heads_v() != 0 || c.ffn_hidden() < 1 ||
        c.rotary_dim() > c.head_dim())
      std::abort();
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  rodimus::model_config c;
  try {
    if (size > 0 && data[0] == '#') {
      reader r{data + 1, size - 1};
      nlohmann::json j = nlohmann::json::parse(base_configs[r.byte() & 1]);
      for (int edits = 0; edits < 16 && !r.empty(); ++edits) {
        const std::uint8_t k = r.byte();
        const auto& key = keys[k % n_keys];
        nlohmann::json& section = *key[0] ? j[key[0]] : j;
        if (!section.is_object()) section = nlohmann::json::object();
        if (k & 0x80)
          section.erase(key[1]);
        else
          section[key[1]] = value_from(r);
      }
      c = rodimus::io::parse_config(j, "fuzz/config.json");
    } else {
      c = rodimus::io::parse_config_text(std::string(reinterpret_cast<const char*>(data), size),
                                         "fuzz/config.json");
    }
  } catch (const rodimus::error&) {
    return 0;
  }
  check_accepted(c);
  return 0;
}
