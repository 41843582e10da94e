// config.json parsing (defaults of docs/MODEL.md §11.4, derived sizes of §2.1/§1.6/§5, strict
// validation) and checkpoint validation against the configuration (model/weights.hpp).
#include "support/test_support.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include "rodimus/core/finite.hpp"
#include "rodimus/io/config.hpp"
#include "rodimus/model/weights.hpp"

using namespace rodimus;
using nlohmann::json;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const rodimus::error& e) {
    return e.what();
  }
  return "<no error>";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

json plus_base() {
  return json{{"model_type", "rodimus"},
              {"block_type", "rodimus_plus"},
              {"d_model", 2048},
              {"n_layer", 24},
              {"vocab_size", 126464},
              {"tie_word_embeddings", true},
              {"mixer_cfg",
               {{"expand_ratio", 2.0},
                {"input_gate_low_rank", "auto"},
                {"mem_size", 64},
                {"mode", "fused_chunk"},
                {"normalize_epsilon", 1e-5}}},
              {"attn_cfg",
               {{"ffn_expand_ratio", 4.0 / 3.0},
                {"num_heads", 16},
                {"num_heads_k", 1},
                {"num_heads_v", 16},
                {"rotary_emb_dim", -1},
                {"rotary_emb_scale_base", nullptr},
                {"window_size", 4096}}}};
}

// A fresh temporary folder, removed at scope exit.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    path = std::filesystem::temp_directory_path() /
           ("rodimus_test_config_" + std::to_string(test::run_seed() % 1000000007ull) + "_" +
            std::to_string(counter()++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

// Copy a golden checkpoint's tensors to `dir`, letting `edit` change the list first.
void write_edited(const std::string& src_dir, const std::string& dir,
                  const std::function<void(std::vector<io::tensor_to_write>&)>& edit) {
  std::filesystem::copy_file(src_dir + "/config.json", dir + "/config.json",
                             std::filesystem::copy_options::overwrite_existing);
  auto f = io::safetensors_file::open(src_dir + "/model.safetensors");
  std::vector<io::tensor_to_write> ts;
  for (const auto& t : f.tensors())
    ts.push_back({t.name, t.type, t.shape, t.bytes});
  edit(ts);
  io::write_safetensors(dir + "/model.safetensors", ts);
}

} // namespace

TEST_CASE("released configurations: derived sizes and parameter counts of docs/MODEL.md §7.1") {
  // Rodimus-1.4B (no normalize_epsilon: 1e-12; attn_cfg present but unused).
  json j14 = {
      {"model_type", "rodimus"},
      {"block_type", "rodimus"},
      {"d_model", 2048},
      {"n_layer", 48},
      {"vocab_size", 126464},
      {"tie_word_embeddings", true},
      {"mixer_cfg", {{"expand_ratio", 2.0}, {"input_gate_low_rank", "auto"}, {"mem_size", 64}}},
      {"attn_cfg",
       {{"num_heads", nullptr}, {"window_size", 128}, {"ffn_expand_ratio", 4.0 / 3.0}}}};
  auto c14 = io::parse_config(j14);
  CHECK(c14.d_inner() == 4096);
  CHECK(c14.low_rank() == 32);
  CHECK(c14.normalize_epsilon == 1e-12);
  CHECK(parameter_count(c14) - 126464 * 2048 - 2048 == 48 * 26511488ll);
  CHECK(std::llround(parameter_count(c14) / 1e5) == 15316); // 1.5316 B with the tied embedding

  auto c16 = io::parse_config(plus_base());
  CHECK(c16.is_plus());
  CHECK(c16.ffn_hidden() == 2736); // int(2730.67) = 2730 -> 2736
  CHECK(c16.head_dim() == 128);
  CHECK(c16.window_left() == 2048);
  CHECK(c16.rotary_dim() == 128);
  CHECK(c16.normalize_epsilon == 1e-5);
  CHECK(parameter_count(c16) - 126464 * 2048 - 2048 == 24 * 56170624ll);
  CHECK(std::llround(parameter_count(c16) / 1e5) == 16071);

  json j4 = plus_base();
  j4["d_model"] = 3072;
  j4["n_layer"] = 32;
  j4["tie_word_embeddings"] = false;
  j4["attn_cfg"]["num_heads"] = 24;
  j4["attn_cfg"]["num_heads_v"] = 24;
  auto c4 = io::parse_config(j4);
  CHECK(c4.d_inner() == 6144);
  CHECK(c4.low_rank() == 48);
  CHECK(c4.ffn_hidden() == 4096);
  CHECK(parameter_count(c4) - 2 * 126464 * 3072 - 3072 == 32 * 125297792ll);
  CHECK(std::llround(parameter_count(c4) / 1e5) == 47865);
}

TEST_CASE("defaults of the reference configuration class apply to missing keys") {
  auto c = io::parse_config(json{{"model_type", "rodimus"}});
  CHECK(c.block_type == block_kind::rodimus);
  CHECK(c.d_model == 2048);
  CHECK(c.n_layer == 24);
  CHECK(c.vocab_size == 50277);
  CHECK(c.norm_epsilon == 1e-5);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK_FALSE(c.use_scale_embedding);
  CHECK_FALSE(c.use_norm_embedding);
  CHECK(c.mem_size == 64);
  CHECK(c.d_conv == 4);
  CHECK(c.d_inner() == 4096);
  CHECK(c.low_rank() == 32);
  CHECK(c.normalize_epsilon == 1e-12);
  CHECK(c.embed_scale() == 1.0f);

  json p = {{"model_type", "rodimus"},
            {"block_type", "rodimus_plus"},
            {"d_model", 256},
            {"attn_cfg", {{"num_heads_k", 1}, {"num_heads_v", 2}}}};
  auto cp = io::parse_config(p);
  CHECK(cp.heads() == 2); // null -> d_model // 128
  CHECK(cp.head_dim() == 128);
  CHECK(cp.window_left() == -1); // absent -> unbounded
  CHECK(cp.rotary_dim() == 128);
  CHECK(cp.rotary_emb_base == 10000.0);
  CHECK(cp.ffn_hidden() == 344); // int(341.33) = 341 -> 344
  p["attn_cfg"]["window_size"] = nullptr;
  CHECK(io::parse_config(p).window_left() == -1);
  p["attn_cfg"]["window_size"] = -5;
  CHECK(io::parse_config(p).window_left() == -1);
  p["attn_cfg"]["window_size"] = 33;
  CHECK(io::parse_config(p).window_left() == 16);
  p["attn_cfg"]["rotary_emb_dim"] = 0;
  CHECK(io::parse_config(p).rotary_dim() == 0);
  p["mixer_cfg"] = {{"input_gate_low_rank", "40"}, {"d_conv", 3}, {"mem_size", 16}};
  p["use_scale_embedding"] = true;
  auto cq = io::parse_config(p);
  CHECK(cq.low_rank() == 40);
  CHECK(cq.d_conv == 3);
  CHECK(cq.embed_scale() == 4.0f);
  p["mixer_cfg"]["input_gate_low_rank"] = 12;
  CHECK(io::parse_config(p).low_rank() == 12);
  p["mixer_cfg"]["input_gate_low_rank"] = "auto";
  CHECK(io::parse_config(p).low_rank() == 16); // max(256 // 64, 16)
}

TEST_CASE("the golden checkpoints: configuration shapes equal the stored tensors") {
  for (const char* name :
       {"rodimus_tiny", "rodimus_plus_tiny", "rodimus_plus_opts", "rodimus_tiny_bf16",
        "rodimus_plus_tiny_bf16", "rodimus_plus_opts_bf16"}) {
    INFO(name);
    auto w = model_weights::load(test::golden_dir() + "/" + name);
    CHECK(w.layers().size() == std::size_t(w.config().n_layer));
    CHECK(w.embeddings().rows == w.config().vocab_size);
  }
  auto opts = io::load_config(test::golden_dir() + "/rodimus_plus_opts");
  CHECK(opts.d_inner() == 192);
  CHECK(opts.low_rank() == 24);
  CHECK(opts.mem_size == 32);
  CHECK(opts.heads() == 4);
  CHECK(opts.head_dim() == 32);
  CHECK(opts.rotary_dim() == 16);
  CHECK(opts.ffn_hidden() == 256);
  CHECK(opts.window_left() == 24);
  CHECK(opts.tie_word_embeddings);
  auto coder = model_weights::load(test::source_dir() + "/examples/models/tiny-coder");
  CHECK(coder.config().ffn_hidden() == 256);
  CHECK(coder.embeddings().type == dtype::bf16);
  CHECK(coder.lm_head().data == coder.embeddings().data); // tied
  CHECK(coder.config().normalize_epsilon == 1e-5);
}

namespace {

/// Every matrix of `w` with its checkpoint name (layer matrices, embeddings, the head).
std::vector<std::pair<std::string, const weight_matrix*>> named_matrices(const model_weights& w) {
  std::vector<std::pair<std::string, const weight_matrix*>> out = {
      {"model.embeddings.weight", &w.embeddings()}};
  if (!w.config().tie_word_embeddings) out.push_back({"lm_head.weight", &w.lm_head()});
  for (std::size_t i = 0; i < w.layers().size(); ++i) {
    const layer_weights& L = w.layers()[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    const std::string im = p + "mixer.inner_mixer.";
    out.insert(out.end(), {{p + "mixer.fc.weight", &L.mixer.fc},
                           {p + "mixer.out_proj.weight", &L.mixer.out_proj},
                           {im + "in_proj.weight", &L.mixer.in_proj},
                           {im + "ch_gate_proj.0.weight", &L.mixer.ch_gate_down},
                           {im + "ch_gate_proj.1.weight", &L.mixer.ch_gate_up},
                           {im + "mem_gate_proj.weight", &L.mixer.mem_gate}});
    if (w.config().is_plus())
      out.insert(out.end(), {{p + "attn.q_proj.weight", &L.attn.q_proj},
                             {p + "attn.k_proj.weight", &L.attn.k_proj},
                             {p + "attn.v_proj.weight", &L.attn.v_proj},
                             {p + "attn.out_proj.weight", &L.attn.out_proj},
                             {p + "ffn.fc.weight", &L.ffn.fc},
                             {p + "ffn.out_proj.weight", &L.ffn.out_proj}});
  }
  return out;
}

} // namespace

TEST_CASE("weight placement: memory holds aligned copies of every matrix, mapped uses the file") {
  for (const char* name : {"rodimus_tiny", "rodimus_plus_opts", "rodimus_plus_tiny_bf16"}) {
    INFO(name);
    const std::string dir = test::golden_dir() + "/" + name;
    const auto mem = model_weights::load(dir); // the default
    const auto map = model_weights::load(dir, weight_placement::mapped);
    CHECK(mem.placement() == weight_placement::memory);
    CHECK(map.placement() == weight_placement::mapped);
    const auto in_mem = named_matrices(mem), in_map = named_matrices(map);
    REQUIRE(in_mem.size() == in_map.size());
    REQUIRE(in_mem.size() > 6);
    for (std::size_t i = 0; i < in_mem.size(); ++i) {
      const std::string& tensor = in_mem[i].first; // (not a structured binding: INFO captures it)
      const weight_matrix* m = in_mem[i].second;
      INFO(tensor);
      const io::tensor_info& t = mem.checkpoint().at(tensor);
      REQUIRE(m->bytes() == t.end - t.begin);
      CHECK(m->data != static_cast<const void*>(t.bytes)); // a copy ...
      CHECK(reinterpret_cast<std::uintptr_t>(m->data) % 64 == 0);
      CHECK(std::memcmp(m->data, t.bytes, m->bytes()) == 0); // ... of the same bytes
      CHECK(m->type == t.type);
      const weight_matrix* f = in_map[i].second;
      CHECK(f->data == static_cast<const void*>(map.checkpoint().at(tensor).bytes)); // in place
      CHECK(f->bytes() == m->bytes());
    }
    if (mem.config().tie_word_embeddings) CHECK(mem.lm_head().data == mem.embeddings().data);
    const auto& a = mem.norm_f();
    const auto& b = map.norm_f();
    CHECK(std::vector<float>(a.data, a.data + a.numel()) ==
          std::vector<float>(b.data, b.data + b.numel()));
  }
}

TEST_CASE("invalid configurations name the key, the expectation and the value") {
  auto err = [](json j) { return error_of([&] { (void)io::parse_config(j, "cfg.json"); }); };
  std::string e;

  e = err(json{{"block_type", "rodimus"}});
  CHECK(contains(e, "model_type"));
  e = err(json{{"model_type", "mamba"}});
  CHECK(contains(e, "model_type"));
  CHECK(contains(e, "mamba"));
  e = err(json{{"model_type", "rodimus"}, {"block_type", "transformer"}});
  CHECK(contains(e, "block_type"));
  CHECK(contains(e, "transformer"));
  e = err(json{{"model_type", "rodimus"}, {"d_model", "2048"}});
  CHECK(contains(e, "'d_model'"));
  CHECK(contains(e, "integer"));
  e = err(json{{"model_type", "rodimus"}, {"n_layer", -3}});
  CHECK(contains(e, "'n_layer'"));
  CHECK(contains(e, "-3"));
  e = err(json{{"model_type", "rodimus"}, {"vocab_size", 0}});
  CHECK(contains(e, "vocab_size"));
  e = err(json{{"model_type", "rodimus"}, {"d_model", 64.5}});
  CHECK(contains(e, "d_model"));
  e = err(json{{"model_type", "rodimus"}, {"norm_epsilon", -1e-5}});
  CHECK(contains(e, "norm_epsilon"));
  e = err(json{{"model_type", "rodimus"}, {"tie_word_embeddings", "yes"}});
  CHECK(contains(e, "tie_word_embeddings"));
  e = err(json{{"model_type", "rodimus"}, {"mixer_cfg", 3}});
  CHECK(contains(e, "mixer_cfg"));
  e = err(json{{"model_type", "rodimus"}, {"mixer_cfg", {{"mem_size", 0}}}});
  CHECK(contains(e, "mixer_cfg.mem_size"));
  e = err(json{{"model_type", "rodimus"}, {"mixer_cfg", {{"input_gate_low_rank", "many"}}}});
  CHECK(contains(e, "mixer_cfg.input_gate_low_rank"));
  CHECK(contains(e, "many"));
  e = err(json{{"model_type", "rodimus"}, {"mixer_cfg", {{"input_gate_low_rank", -4}}}});
  CHECK(contains(e, "input_gate_low_rank"));
  e = err(json{{"model_type", "rodimus"}, {"mixer_cfg", {{"expand_ratio", "2"}}}});
  CHECK(contains(e, "mixer_cfg.expand_ratio"));

  json p = plus_base();
  p["attn_cfg"].erase("num_heads_k");
  e = err(p);
  CHECK(contains(e, "attn_cfg.num_heads_k"));
  p = plus_base();
  p["attn_cfg"]["num_heads_v"] = nullptr;
  CHECK(contains(err(p), "attn_cfg.num_heads_v"));
  p = plus_base();
  p["attn_cfg"]["num_heads"] = 15; // does not divide 2048
  e = err(p);
  CHECK(contains(e, "attn_cfg.num_heads"));
  CHECK(contains(e, "15"));
  p = plus_base();
  p["attn_cfg"]["num_heads_k"] = 3; // 16 % 3 != 0
  CHECK(contains(err(p), "attn_cfg.num_heads_k"));
  p = plus_base();
  p["attn_cfg"]["num_heads_v"] = 5;
  CHECK(contains(err(p), "attn_cfg.num_heads_v"));
  p = plus_base();
  p["attn_cfg"]["rotary_emb_dim"] = 130;
  CHECK(contains(err(p), "attn_cfg.rotary_emb_dim"));
  p = plus_base();
  p["attn_cfg"]["window_size"] = "wide";
  CHECK(contains(err(p), "attn_cfg.window_size"));
  p = plus_base();
  p["attn_cfg"]["softmax_scale"] = "norm";
  CHECK(contains(err(p), "attn_cfg.softmax_scale"));
  p = plus_base();
  p["d_model"] = 64; // num_heads null would give 0 heads
  p["attn_cfg"]["num_heads"] = nullptr;
  CHECK(contains(err(p), "attn_cfg.num_heads"));
  CHECK(contains(error_of([] { (void)io::parse_config_text("{not json", "x.json"); }), "x.json"));
  CHECK(contains(error_of([] { (void)io::load_config("/nonexistent/rodimus"); }), "config.json"));
}

TEST_CASE("checkpoint validation lists every missing, misshapen and unexpected tensor") {
  const std::string src = test::golden_dir() + "/rodimus_plus_tiny";
  temp_dir tmp;
  const std::string dir = tmp.path.string();
  std::vector<float> junk(64 * 3, 0.5f);

  write_edited(src, dir, [&](std::vector<io::tensor_to_write>& ts) {
    std::vector<io::tensor_to_write> keep;
    for (auto& t : ts) {
      if (t.name == "model.layers.1.attn.k_proj.weight") continue;       // missing
      if (t.name == "model.norm_f.weight") continue;                     // missing
      if (t.name == "model.layers.0.ffn_norm.weight") t.shape = {2, 64}; // misshapen (same bytes)
      keep.push_back(t);
    }
    keep.push_back({"model.layers.0.attn.s", dtype::f32, {64, 3}, junk.data()}); // unexpected
    ts = keep;
  });
  std::string e = error_of([&] { (void)model_weights::load(dir); });
  CHECK(contains(e, "model.layers.1.attn.k_proj.weight"));
  CHECK(contains(e, "model.norm_f.weight"));
  CHECK(contains(e, "model.layers.0.ffn_norm.weight"));
  CHECK(contains(e, "[2, 64]"));
  CHECK(contains(e, "[128]"));
  CHECK(contains(e, "model.layers.0.attn.s"));
  CHECK(contains(e, "4 problems"));

  write_edited(src, dir, [&](std::vector<io::tensor_to_write>& ts) {
    for (auto& t : ts)
      if (t.name == "model.layers.0.mixer.inner_mixer.mem_gate_proj.bias") {
        t.type = dtype::i64; // 128 f32 = 64 i64 bytes
        t.shape = {64};
      }
  });
  e = error_of([&] { (void)model_weights::load(dir); });
  CHECK(contains(e, "mem_gate_proj.bias"));
  CHECK(contains(e, "I64"));

  // Tied embeddings: a stored duplicate lm_head is accepted; without it, fine too.
  const std::string tied = test::golden_dir() + "/rodimus_plus_opts";
  auto emb = io::safetensors_file::open(tied + "/model.safetensors");
  const io::tensor_info& E = emb.at("model.embeddings.weight");
  write_edited(tied, dir, [&](std::vector<io::tensor_to_write>& ts) {
    ts.push_back({"lm_head.weight", E.type, E.shape, E.bytes});
  });
  auto w = model_weights::load(dir);
  CHECK(w.lm_head().data == w.embeddings().data);
  // Untied without lm_head: missing.
  write_edited(test::golden_dir() + "/rodimus_tiny", dir,
               [&](std::vector<io::tensor_to_write>& ts) {
                 std::vector<io::tensor_to_write> keep;
                 for (auto& t : ts)
                   if (t.name != "lm_head.weight") keep.push_back(t);
                 ts = keep;
               });
  CHECK(contains(error_of([&] { (void)model_weights::load(dir); }),
                 "missing tensor 'lm_head.weight'"));
}

// ---------------------------------------------------------------- hostile checkpoints (issue 15)

TEST_CASE("n_layer beyond the checkpoint's layers is refused before the tensor list is built") {
  // n_layer 16777216 built a list of 218 million expected tensors (5.4 GB) before failing, and
  // n_layer 100000 made a 191 MB message listing every missing tensor.
  const std::string src = test::golden_dir() + "/rodimus_tiny";
  temp_dir tmp;
  const std::string dir = tmp.path.string();
  write_edited(src, dir, [](std::vector<io::tensor_to_write>&) {});
  std::ifstream in(src + "/config.json");
  json cfg = json::parse(in);
  for (std::int64_t n : {std::int64_t(100000), std::int64_t(16777216)}) {
    cfg["n_layer"] = n;
    std::ofstream(dir + "/config.json") << cfg.dump();
    const std::string e = error_of([&] { (void)model_weights::load(dir); });
    INFO("message: " << e.substr(0, 400));
    CHECK(contains(e, "n_layer is " + std::to_string(n)));
    CHECK(contains(e, "tensors for 2 layers"));
    CHECK(e.size() < 1000);
  }
}

TEST_CASE("a checkpoint with many problems lists the first 20 and counts the rest") {
  const std::string src = test::golden_dir() + "/rodimus_plus_tiny";
  temp_dir tmp;
  const std::string dir = tmp.path.string();
  std::vector<float> junk(4, 0.5f);
  std::vector<std::string> names;
  for (int i = 0; i < 5000; ++i)
    names.push_back("junk." + std::to_string(i));
  write_edited(src, dir, [&](std::vector<io::tensor_to_write>& ts) {
    for (const auto& name : names)
      ts.push_back({name, dtype::f32, {4}, junk.data()});
  });
  const std::string e = error_of([&] { (void)model_weights::load(dir); });
  CHECK(contains(e, "5000 problems"));
  CHECK(contains(e, "and 4980 more"));
  CHECK(e.size() < 4000);
}

TEST_CASE("NaN and infinite weights are refused at load, naming the first such tensor") {
  // They were accepted silently: every logit NaN, and generate reported a normal stop.
  const std::string src = test::golden_dir() + "/rodimus_plus_tiny_bf16";
  temp_dir tmp;
  const std::string dir = tmp.path.string();
  auto f = io::safetensors_file::open(src + "/model.safetensors");
  struct poison {
    const char* tensor;
    std::size_t element;
    float value;
    const char* kind;
  };
  const float inf = std::numeric_limits<float>::infinity();
  for (const poison p : {poison{"model.layers.1.attn.q_proj.weight", 37, std::nanf(""), "NaN"},
                         poison{"model.norm_f.weight", 5, -inf, "-inf"},
                         poison{"model.embeddings.weight", 0, inf, "+inf"}}) {
    INFO(p.tensor);
    std::vector<std::vector<unsigned char>> copies;
    write_edited(src, dir, [&](std::vector<io::tensor_to_write>& ts) {
      copies.reserve(ts.size());
      for (auto& t : ts) {
        if (t.name != p.tensor) continue;
        const io::tensor_info& info = f.at(t.name);
        copies.emplace_back(info.bytes, info.bytes + (info.end - info.begin));
        const std::size_t esize = size_of(info.type);
        if (info.type == dtype::bf16) {
          const std::uint16_t v = bf16::from_float(p.value);
          std::memcpy(copies.back().data() + p.element * esize, &v, esize);
        } else {
          REQUIRE(info.type == dtype::f32);
          std::memcpy(copies.back().data() + p.element * esize, &p.value, esize);
        }
        t.bytes = copies.back().data();
      }
    });
    const std::string e = error_of([&] { (void)model_weights::load(dir); });
    INFO("message: " << e);
    CHECK(contains(e, std::string("tensor '") + p.tensor + "'"));
    CHECK(contains(e, p.kind));
    CHECK(contains(e, "element " + std::to_string(p.element)));
  }
  // The same edit with a finite value loads.
  write_edited(src, dir, [](std::vector<io::tensor_to_write>&) {});
  CHECK_NOTHROW((void)model_weights::load(dir));
}

TEST_CASE("first_non_finite finds the first NaN or infinity in every float dtype") {
  std::vector<float> f32(3000, 1.5f);
  CHECK(first_non_finite(dtype::f32, f32.data(), f32.size()) == f32.size());
  f32[2500] = std::nanf("");
  f32[2900] = std::numeric_limits<float>::infinity();
  CHECK(first_non_finite(dtype::f32, f32.data(), f32.size()) == 2500);
  CHECK(std::string(non_finite_kind(dtype::f32, f32.data(), 2900)) == "+inf");
  std::vector<std::uint16_t> half(100, f16::from_float(65504.0f)); // the largest finite f16
  CHECK(first_non_finite(dtype::f16, half.data(), half.size()) == half.size());
  half[99] = 0xFC00; // -inf
  CHECK(first_non_finite(dtype::f16, half.data(), half.size()) == 99);
  CHECK(std::string(non_finite_kind(dtype::f16, half.data(), 99)) == "-inf");
  std::vector<std::uint16_t> b16(10, bf16::from_float(3.0e38f));
  CHECK(first_non_finite(dtype::bf16, b16.data(), b16.size()) == b16.size());
  b16[3] = 0x7FC0; // NaN
  CHECK(first_non_finite(dtype::bf16, b16.data(), b16.size()) == 3);
  std::vector<double> f64(5, 1e308);
  f64[4] = -std::numeric_limits<double>::infinity();
  CHECK(first_non_finite(dtype::f64, f64.data(), f64.size()) == 4);
  std::vector<std::int32_t> ints(4, -1); // all bits set: integers are never "non-finite"
  CHECK(first_non_finite(dtype::i32, ints.data(), ints.size()) == ints.size());
}
