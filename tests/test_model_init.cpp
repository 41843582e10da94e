// Random checkpoints (model/init.hpp) and the streaming safetensors writer under them
// (io::safetensors_writer):
//   - a tiny Rodimus and a tiny Rodimus+ checkpoint, matrices in bf16 and in f32, load with
//     model_weights::load: every tensor the configuration implies, with its shape; matrices in the
//     dtype asked for, vectors and the conv in f32; config.json as given;
//   - the values against docs/MODEL.md §8, computed here independently of init.hpp's rules: norms
//     and residual weights exactly 1, ch_gate_proj.1.bias exactly 0; every other tensor has more
//     than one distinct value and stays in its distribution's range (uniforms inside their bound,
//     normals inside 3.5 sigma, times one bf16 rounding); the sample standard deviation of each
//     normal or uniform tensor of >= 4096 values within 10% of the distribution's; the DDTS biases
//     give softplus(b) in [1e-3, 1e-1] and sigmoid(b) in [1/16, 0.9] (relative slack 1e-2 for
//     bf16);
//   - the seed: the same seed writes the same bytes, another seed other values in every tensor
//     that is not a constant; seed 0 writes what `rodimus bench` has always written
//     (random_tensor_values: tensor i from generator 1000 + i);
//   - the writer: a file streamed tensor by tensor equals to_safetensors_bytes of the same tensors;
//     the wrong byte count, a tensor too many and a commit() before the last tensor are errors
//     naming the tensor, and leave an existing file as it was.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "rodimus/io/read_file.hpp"
#include "rodimus/io/safetensors.hpp"
#include "rodimus/model/init.hpp"
#include "rodimus/model/weights.hpp"
#include "support/temp_dir.hpp"
#include "support/test_support.hpp"

using namespace rodimus;
using test::expect_error;
using test::temp_dir;

namespace {

/// config.json of a tiny model: d_model 64, 2 layers, a vocabulary of 300; Rodimus+ with 2 query
/// heads of 32, one shared key head, a window of 16.
std::string tiny_config(bool plus) {
  std::string c = R"({"architectures": ["RodimusForCausalLM"], "model_type": "rodimus",
  "vocab_size": 300, "d_model": 64, "n_layer": 2, "norm_epsilon": 1e-5, "residual_in_fp32": true,
  "initializer_range": 0.02, "rescale_prenorm_residual": true, "tie_word_embeddings": false,
  "max_position_embeddings": 128, "bos_token_id": 1, "eos_token_id": 2,
  "mixer_cfg": {"expand_ratio": 2.0, "mem_size": 16, "input_gate_low_rank": "auto"},)";
  if (plus)
    c += R"("block_type": "rodimus_plus", "attn_cfg": {"num_heads": 2, "num_heads_k": 1,
  "num_heads_v": 2, "window_size": 16, "rotary_emb_dim": -1, "ffn_expand_ratio": 1.5}})";
  else
    c += R"("block_type": "rodimus"})";
  return c + "\n";
}

bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

double sample_std(const std::vector<float>& v) {
  double m = 0, q = 0;
  for (float x : v)
    m += x;
  m /= double(v.size());
  for (float x : v)
    q += (x - m) * (x - m);
  return std::sqrt(q / double(v.size()));
}

/// docs/MODEL.md §8 for one tensor, written out here: what the values must be.
void check_values(const std::string& name, const std::vector<std::int64_t>& shape,
                  const std::vector<float>& v, const model_config& cfg, double rounding) {
  INFO("tensor " << name);
  REQUIRE(!v.empty());
  std::set<float> distinct(v.begin(), v.end());
  if (ends_with(name, "norm.weight") || ends_with(name, "norm_f.weight") ||
      ends_with(name, "residual_weight")) {
    CHECK(distinct == std::set<float>{1.0f});
    return;
  }
  if (ends_with(name, "ch_gate_proj.1.bias")) {
    CHECK(distinct == std::set<float>{0.0f});
    return;
  }
  CHECK(distinct.size() > 1);
  if (ends_with(name, "mem_gate_proj.bias")) {
    const std::size_t N = std::size_t(cfg.mem_size);
    REQUIRE(v.size() == 2 * N);
    for (std::size_t i = 0; i < N; ++i) {
      const double rho = std::log1p(std::exp(double(v[i]))); // softplus
      CHECK(rho >= 1e-3 * (1 - 1e-2));
      CHECK(rho <= 1e-1 * (1 + 1e-2));
      const double tau = 1 / (1 + std::exp(-double(v[N + i]))); // sigmoid
      CHECK(tau >= (1.0 / 16) * (1 - 1e-2));
      CHECK(tau <= 0.9 * (1 + 1e-2));
    }
    return;
  }
  // A uniform U(-b, b) (std b / sqrt 3) or a normal N(0, s) bounded at 3.5 s.
  double bound = 0, sd = 0;
  if (name.find("short_conv") != std::string::npos) {
    bound = 0.5;
    sd = bound / std::sqrt(3.0);
  } else if (ends_with(name, "in_proj.weight") || ends_with(name, "mem_gate_proj.weight") ||
             ends_with(name, "ch_gate_proj.0.weight") || ends_with(name, "ch_gate_proj.1.weight")) {
    bound = std::pow(2.0, -2.5) * std::sqrt(6.0 / double(shape[0] + shape[1]));
    sd = bound / std::sqrt(3.0);
  } else {
    const double n_res = cfg.is_plus() ? 3 : 1;
    sd = ends_with(name, "out_proj.weight") ? 0.02 / std::sqrt(n_res * double(cfg.n_layer)) : 0.02;
    bound = 3.5 * sd;
  }
  for (float x : v)
    REQUIRE(std::abs(double(x)) <= bound * (1 + rounding));
  if (v.size() >= 4096) CHECK(std::abs(sample_std(v) / sd - 1) < 0.1);
}

/// Writes a checkpoint of `config` and checks it tensor by tensor.
void check_checkpoint(const std::string& config, dtype type) {
  temp_dir d;
  write_random_checkpoint(d.str(), config, type, 3);
  CHECK(io::read_regular_file(d.file("config.json")) == config);
  const model_weights w = model_weights::load(d.str());
  const model_config& cfg = w.config();
  const std::vector<expected_tensor> want = expected_tensors(cfg);
  CHECK(w.checkpoint().size() == want.size());
  const double rounding = type == dtype::bf16 ? 1.0 / 256 : 0.0;
  for (const expected_tensor& e : want) {
    INFO("tensor " << e.name);
    const io::tensor_info& t = w.checkpoint().at(e.name);
    CHECK(t.shape == e.shape);
    const bool matrix = e.shape.size() == 2;
    CHECK(t.type == (matrix ? type : dtype::f32));
    check_values(e.name, e.shape, w.checkpoint().read<float>(e.name), cfg, matrix ? rounding : 0.0);
  }
}

std::vector<unsigned char> file_bytes(const std::string& path) {
  const std::string s = io::read_regular_file(path);
  return {s.begin(), s.end()};
}

} // namespace

TEST_CASE("write_random_checkpoint: tiny Rodimus and Rodimus+ checkpoints load with every tensor's "
          "shape, dtype and distribution") {
  for (bool plus : {false, true})
    for (dtype type : {dtype::bf16, dtype::f32}) {
      const std::string label =
          std::string(plus ? "rodimus_plus " : "rodimus ") + io::safetensors_dtype_name(type);
      INFO(label);
      check_checkpoint(tiny_config(plus), type);
    }
}

TEST_CASE(
    "write_random_checkpoint: the same seed gives the same bytes, another seed other values") {
  const std::string config = tiny_config(true);
  temp_dir a, b, c;
  write_random_checkpoint(a.str(), config, dtype::bf16, 5);
  write_random_checkpoint(b.str(), config, dtype::bf16, 5);
  write_random_checkpoint(c.str(), config, dtype::bf16, 6);
  const std::string file = io::checkpoint::single_file_name;
  CHECK(file_bytes(a.file(file)) == file_bytes(b.file(file)));
  const model_weights wa = model_weights::load(a.str()), wc = model_weights::load(c.str());
  for (const expected_tensor& e : expected_tensors(wa.config())) {
    INFO("tensor " << e.name);
    const std::vector<float> va = wa.checkpoint().read<float>(e.name);
    const std::vector<float> vc = wc.checkpoint().read<float>(e.name);
    const bool constant = std::set<float>(va.begin(), va.end()).size() == 1;
    if (constant)
      CHECK(va == vc);
    else
      CHECK(va != vc);
  }
}

TEST_CASE("write_random_checkpoint: seed 0 stores random_tensor_values (generator 1000 + i)") {
  const std::string config = tiny_config(false);
  temp_dir d;
  write_random_checkpoint(d.str(), config, dtype::f32);
  const model_weights w = model_weights::load(d.str());
  const std::vector<expected_tensor> want = expected_tensors(w.config());
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO("tensor " << want[i].name);
    std::vector<float> v(w.checkpoint().at(want[i].name).numel());
    fill_init(v, init_rule_for(want[i].name, w.config(), want[i].shape), w.config().mem_size,
              1000 + i);
    CHECK(w.checkpoint().read<float>(want[i].name) == v);
    CHECK(random_tensor_values(w.config(), want[i], i, 0) == v);
  }
}

TEST_CASE("write_random_checkpoint refuses a bad configuration or storage type before writing") {
  temp_dir d;
  const std::string config = tiny_config(false);
  expect_error([&] { write_random_checkpoint(d.str(), config, dtype::f16); }, {"f16"});
  std::string bad = config;
  bad.replace(bad.find("\"d_model\": 64"), 13, "\"d_model\": -4");
  expect_error([&] { write_random_checkpoint(d.str(), bad, dtype::f32); },
               {"config.json", "d_model"});
  CHECK(std::filesystem::is_empty(d.path));
}

TEST_CASE("safetensors_writer streams what to_safetensors_bytes serialises, and refuses a wrong "
          "tensor without touching the file") {
  auto g = test::rng(11);
  const std::vector<float> a = test::uniform<float>(g, 6);
  const std::vector<bf16> b = test::uniform<bf16>(g, 5);
  std::vector<std::int64_t> c(3);
  for (auto& x : c)
    x = std::int64_t(g() % 2001) - 1000;
  const std::vector<io::tensor_to_write> tensors = {{"a", dtype::f32, {2, 3}, a.data()},
                                                    {"b", dtype::bf16, {5}, b.data()},
                                                    {"c", dtype::i64, {3, 1}, c.data()}};
  const std::map<std::string, std::string> meta = {{"format", "pt"}};
  temp_dir d;
  const std::string path = d.file("x.safetensors");
  {
    io::safetensors_writer f(path, tensors, meta);
    for (const auto& t : tensors) {
      REQUIRE(f.next() != nullptr);
      CHECK(f.next()->name == t.name);
      f.write_next(t.bytes, io::detail::tensor_bytes(t));
    }
    CHECK(f.next() == nullptr);
    f.commit();
  }
  const std::vector<unsigned char> want = io::to_safetensors_bytes(tensors, meta);
  CHECK(file_bytes(path) == want);
  CHECK(io::safetensors_file::open(path).read<float>("a") == a);

  expect_error(
      [&] {
        io::safetensors_writer f(path, tensors);
        f.write_next(a.data(), a.size() * 4 - 1);
      },
      {path, "'a'", "24 bytes", "given 23"});
  expect_error(
      [&] {
        io::safetensors_writer f(path, tensors);
        f.write_next(a.data(), a.size() * 4);
        f.commit();
      },
      {path, "'b'", "not written"});
  expect_error(
      [&] {
        io::safetensors_writer f(path, tensors);
        for (const auto& t : tensors)
          f.write_next(t.bytes, io::detail::tensor_bytes(t));
        f.write_next(a.data(), 4);
      },
      {path, "all 3 tensors"});
  expect_error(
      [&] {
        io::safetensors_writer f(path, {{"a", dtype::f32, {-1}}});
      },
      {"'a'", "shape"});
  CHECK(file_bytes(path) == want);
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(d.path))
    ++files;
  CHECK(files == 1); // no temporary file left behind
}
