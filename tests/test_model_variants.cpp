// Model paths the golden checkpoints do not exercise, checked by deriving checkpoints from them in
// a temporary folder (config.json edited, tensors rewritten with io::write_safetensors):
//   - F16 weights: the F16 checkpoint equals an F32 one holding the same (f16-rounded) values, and
//     stays near the reference's logits;
//   - use_scale_embedding alone and use_norm_embedding alone: embeddings pre-divided (pre-scaled)
//     so the model must reproduce the golden logits exactly when the flag is applied right;
//   - an unbounded attention window (window_size absent): equal to a window longer than the
//     sequence, equal to the golden windowed model where the window does not bite yet, decode and
//     split equal to the forward beyond the old window, and a sequence longer than
//     max_position_embeddings refused before any state changes;
//   - rotary_emb_dim 0: decode and split equal the forward, and the logits differ from rotated
//   ones;
//   - the channel gate's up-projection W1 with rank 32 (input_gate_low_rank), stored (the decode
//     step folds it into mixer_decode) and q8_0 (a linear before mixer_decode): decode equals the
//     forward either way;
//   - weights mapped from the file (q, k, v not back to back: three projection calls into the
//     rows of one q | k | v buffer) give the logits of the memory copy (one call for the three).
#include "support/temp_dir.hpp"
#include "support/test_support.hpp"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "rodimus/backend/scalar/all.hpp"
#include "rodimus/runtime/runner.hpp"

using namespace rodimus;

namespace {

struct tensor_values {
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};

/// A checkpoint held in memory as f32 values, to edit and write back.
struct editable_checkpoint {
  nlohmann::json config;
  std::map<std::string, tensor_values> tensors;

  explicit editable_checkpoint(const std::string& golden_name) {
    const std::string dir = test::golden_dir() + "/" + golden_name;
    std::ifstream in(dir + "/config.json");
    REQUIRE(in.good());
    config = nlohmann::json::parse(in);
    const auto f = io::safetensors_file::open(dir + "/model.safetensors");
    for (const auto& t : f.tensors())
      tensors[t.name] = {t.shape, f.read<float>(t.name)};
  }

  /// Write config.json and model.safetensors (every tensor in `type`) to `dir`.
  void write(const test::temp_dir& dir, dtype type) const {
    dir.write("config.json", config.dump(2));
    std::vector<std::vector<std::uint16_t>> half(tensors.size());
    std::vector<io::tensor_to_write> out;
    std::size_t i = 0;
    for (const auto& [name, t] : tensors) {
      const void* bytes = t.values.data();
      if (type == dtype::f16) {
        for (float v : t.values)
          half[i].push_back(f16::from_float(v));
        bytes = half[i].data();
      }
      out.push_back({name, type, t.shape, bytes});
      ++i;
    }
    io::write_safetensors(dir.file("model.safetensors"), out);
  }

  void scale(const std::string& name, float s) {
    for (float& v : tensors.at(name).values)
      v *= s;
  }
};

std::vector<float> golden_logits(const char* name, std::vector<std::int64_t>& ids, index_t& B,
                                 index_t& T) {
  const auto e = test::open_golden(std::string(name) + "/expected.safetensors");
  B = e.at("input_ids").shape[0];
  T = e.at("input_ids").shape[1];
  ids = e.read<std::int64_t>("input_ids");
  return e.read<float>("logits");
}

/// Logits (B, T', V) of the first T' columns of (B, T, V).
std::vector<float> first_columns(const std::vector<float>& v, index_t B, index_t T, index_t cols,
                                 index_t V) {
  std::vector<float> out;
  for (index_t b = 0; b < B; ++b)
    out.insert(out.end(), v.begin() + std::ptrdiff_t(b * T * V),
               v.begin() + std::ptrdiff_t((b * T + cols) * V));
  return out;
}
std::vector<std::int64_t> first_columns(const std::vector<std::int64_t>& v, index_t B, index_t T,
                                        index_t cols) {
  std::vector<std::int64_t> out;
  for (index_t b = 0; b < B; ++b)
    out.insert(out.end(), v.begin() + std::ptrdiff_t(b * T),
               v.begin() + std::ptrdiff_t(b * T + cols));
  return out;
}

} // namespace

TEST_CASE("f16 checkpoints: equal to f32 weights of the same values, near the reference") {
  for (const char* name : {"rodimus_plus_opts", "rodimus_plus_tiny"}) {
    INFO(name);
    std::vector<std::int64_t> ids;
    index_t B = 0, T = 0;
    const auto want = golden_logits(name, ids, B, T);
    editable_checkpoint ck(name);
    for (auto& [n, t] : ck.tensors)
      for (float& v : t.values)
        v = f16::to_float(f16::from_float(v));
    test::temp_dir d16, d32;
    ck.write(d16, dtype::f16);
    ck.write(d32, dtype::f32);
    const auto w16 = model_weights::load(d16.str());
    const auto w32 = model_weights::load(d32.str());
    REQUIRE(w16.dtype_counts().size() == 1);
    CHECK(w16.dtype_counts().begin()->first == dtype::f16);
    CHECK(w16.lm_head().type == dtype::f16);
    model_runner<scalar> r16(w16), r32(w32);
    const auto l16 = sequence_logits(r16, ids, B, T, T);
    test::check_close(l16, sequence_logits(r32, ids, B, T, T), 1e-5, 1.0, "f16 vs f32 same values");
    test::check_close(sequence_logits(r16, ids, B, T, T / 2), l16, 1e-5, 1.0, "f16 split");
    // f16 rounding of the weights (2^-11 relative) moves the logits by far less than 1%.
    test::check_close(l16, want, 1e-2, 1.0, "f16 vs the reference's f32 logits");
  }
}

TEST_CASE("use_scale_embedding alone and use_norm_embedding alone") {
  std::vector<std::int64_t> ids;
  index_t B = 0, T = 0;
  SUBCASE("scale alone: embeddings / sqrt(mem_size) with the scale on reproduce the reference") {
    const auto want = golden_logits("rodimus_tiny", ids, B, T); // untied, mem_size 64: scale 8
    editable_checkpoint ck("rodimus_tiny");
    REQUIRE(ck.config.at("tie_word_embeddings") == false);
    ck.config["use_scale_embedding"] = true;
    ck.scale("model.embeddings.weight", 1.0f / 8.0f); // a power of two: exact
    test::temp_dir d;
    ck.write(d, dtype::f32);
    const auto w = model_weights::load(d.str());
    CHECK(w.config().embed_scale() == 8.0f);
    model_runner<scalar> r(w);
    test::check_close(sequence_logits(r, ids, B, T, T), want, 1e-4, 1.0, "scale alone");
    test::check_close(sequence_logits(r, ids, B, T, 5), want, 1e-4, 1.0, "scale alone, split");
  }
  SUBCASE("norm alone: rodimus_plus_opts untied, embeddings pre-scaled, the scale off") {
    const auto want = golden_logits("rodimus_plus_opts", ids, B, T); // tied, scale + norm
    editable_checkpoint ck("rodimus_plus_opts");
    ck.tensors["lm_head.weight"] = ck.tensors.at("model.embeddings.weight");
    ck.config["tie_word_embeddings"] = false;
    ck.config["use_scale_embedding"] = false;
    ck.scale("model.embeddings.weight", float(std::sqrt(32.0))); // mem_size 32
    test::temp_dir d;
    ck.write(d, dtype::f32);
    const auto w = model_weights::load(d.str());
    CHECK(w.config().embed_scale() == 1.0f);
    CHECK(w.lm_head().data != w.embeddings().data);
    model_runner<scalar> r(w);
    test::check_close(sequence_logits(r, ids, B, T, T), want, 1e-4, 1.0, "norm alone");
    test::check_close(sequence_logits(r, ids, B, T, 7), want, 1e-4, 1.0, "norm alone, split");
  }
}

TEST_CASE("unbounded attention window (window_size absent)") {
  std::vector<std::int64_t> ids;
  index_t B = 0, T = 0;
  const auto want = golden_logits("rodimus_plus_tiny", ids, B, T); // window_size 32: left 16
  REQUIRE(T > 17);
  editable_checkpoint ck("rodimus_plus_tiny");
  ck.config["attn_cfg"].erase("window_size");
  ck.config["max_position_embeddings"] = 100;
  test::temp_dir unbounded;
  ck.write(unbounded, dtype::f32);
  ck.config["attn_cfg"]["window_size"] = 2 * T + 10; // a window longer than every sequence
  test::temp_dir wide;
  ck.write(wide, dtype::f32);

  const auto wu = model_weights::load(unbounded.str());
  const auto ww = model_weights::load(wide.str());
  REQUIRE(wu.config().window_left() < 0);
  model_runner<scalar> ru(wu), rw(ww);
  const auto lu = sequence_logits(ru, ids, B, T, T);
  test::check_close(lu, sequence_logits(rw, ids, B, T, T), 1e-6, 1.0, "unbounded vs wide window");
  // Up to window_left + 1 = 17 tokens the window of the golden model does not bite.
  test::check_close(
      first_columns(sequence_logits(ru, first_columns(ids, B, T, 17), B, 17, 17), B, 17, 17, 256),
      first_columns(want, B, T, 17, 256), 1e-4, 1.0, "unbounded vs golden, T = 17");
  test::check_close(sequence_logits(ru, ids, B, T, 0), lu, 1e-5, 1.0, "unbounded decode");
  test::check_close(sequence_logits(ru, ids, B, T, 30), lu, 1e-5, 1.0, "unbounded split:30");

  // Capacity: max_position_embeddings = 100 positions per sequence.
  state_pool pool = ru.make_pool(1);
  const int s = pool.acquire();
  (void)ru.prefill(pool, {s}, std::vector<std::int64_t>(99, 3), {0, 99});
  (void)ru.decode(pool, {s}, {4});
  CHECK(pool.position(s) == 100);
  test::expect_error([&] { (void)ru.decode(pool, {s}, {5}); }, {"max_position_embeddings", "101"});
  CHECK(pool.position(s) == 100);
}

TEST_CASE("a state pool larger than the machine's memory is an error, not an OOM kill") {
  editable_checkpoint ck("rodimus_plus_tiny");
  ck.config["attn_cfg"].erase("window_size");
  ck.config["max_position_embeddings"] = 1 << 24; // the ring keeps every position
  test::temp_dir d;
  ck.write(d, dtype::f32);
  const auto w = model_weights::load(d.str());
  model_runner<scalar> r(w);
  test::expect_error([&] { (void)r.make_pool(1 << 20); }, {"state_pool", "GB"});
}

TEST_CASE("rotary_emb_dim 0 turns rotary off: decode and split still equal the forward") {
  std::vector<std::int64_t> ids;
  index_t B = 0, T = 0;
  const auto want = golden_logits("rodimus_plus_opts", ids, B, T);
  editable_checkpoint ck("rodimus_plus_opts");
  ck.config["attn_cfg"]["rotary_emb_dim"] = 0;
  test::temp_dir d;
  ck.write(d, dtype::f32);
  const auto w = model_weights::load(d.str());
  REQUIRE(w.config().rotary_dim() == 0);
  model_runner<scalar> r(w);
  layer0_outputs l0;
  const auto fwd = sequence_logits(r, ids, B, T, T, &l0);
  test::check_close(sequence_logits(r, ids, B, T, 0), fwd, 1e-5, 1.0, "decode");
  test::check_close(sequence_logits(r, ids, B, T, 33), fwd, 1e-5, 1.0, "split:33");
  // Position 0 is not rotated either way; later positions must differ from the rotated model. The
  // logits of these random weights hardly move (7e-6), layer 0's attention output does (2%).
  test::check_close(first_columns(fwd, B, T, 1, 200), first_columns(want, B, T, 1, 200), 1e-4, 1.0,
                    "position 0");
  const auto attn_rotated =
      test::open_golden("rodimus_plus_opts/expected.safetensors").read<float>("layers.0.attn.out");
  CHECK(test::max_abs_diff(l0.attn_out, attn_rotated) > 5e-3 * test::max_abs(attn_rotated));
}

TEST_CASE("a rank-32 channel-gate up-projection, stored or q8_0: decode equals the forward") {
  std::vector<std::int64_t> ids;
  index_t B = 0, T = 0;
  golden_logits("rodimus_tiny", ids, B, T);
  editable_checkpoint ck("rodimus_tiny");
  const index_t R = 32, E = 128;
  ck.config["mixer_cfg"]["input_gate_low_rank"] = R;
  auto g = test::rng(1301);
  for (int layer = 0; layer < 2; ++layer) { // fresh W0 (R, E) and W1 (E, R), init's scale
    const std::string p =
        "model.layers." + std::to_string(layer) + ".mixer.inner_mixer.ch_gate_proj.";
    ck.tensors[p + "0.weight"] = {{R, E}, test::uniform<float>(g, std::size_t(R * E), -0.09, 0.09)};
    ck.tensors[p + "1.weight"] = {{E, R}, test::uniform<float>(g, std::size_t(E * R), -0.18, 0.18)};
  }
  test::temp_dir d;
  ck.write(d, dtype::f32);
  quant_policy q8_low_rank; // W1 quantised too: the presets leave it stored (its own class)
  q8_low_rank.low_rank = weight_format::q8_0;
  q8_low_rank.channel_gate_up = weight_format::q8_0;
  for (const bool quantised : {false, true}) {
    CAPTURE(quantised);
    const auto w = model_weights::load(d.str(), weight_placement::memory, {},
                                       quantised ? q8_low_rank : quant_policy{});
    REQUIRE(w.config().low_rank() == R);
    REQUIRE(w.layers()[0].mixer.ch_gate_up.quantised() == quantised);
    model_runner<scalar> r(w);
    const auto fwd = sequence_logits(r, ids, B, T, T);
    test::check_close(sequence_logits(r, ids, B, T, 0), fwd, 1e-5, 1.0, "decode");
    test::check_close(sequence_logits(r, ids, B, T, 17), fwd, 1e-5, 1.0, "split:17");
  }
}

TEST_CASE("mapped weights, q / k / v projected one by one: the logits of the stacked copy") {
  std::vector<std::int64_t> ids;
  index_t B = 0, T = 0;
  const auto want = golden_logits("rodimus_plus_tiny", ids, B, T);
  const std::string dir = test::golden_dir() + "/rodimus_plus_tiny";
  const auto mem = model_weights::load(dir);
  const auto map = model_weights::load(dir, weight_placement::mapped);
  auto stacked = [](const model_weights& w) {
    const attn_weights& a = w.layers()[0].attn;
    return stacked_rows(stacked_rows(a.q_proj, a.k_proj), a.v_proj).data != nullptr;
  };
  REQUIRE(stacked(mem));
  REQUIRE_FALSE(stacked(map)); // the file's order: k_proj, out_proj, q_proj, v_proj
  model_runner<scalar> rm(mem), rf(map);
  const auto from_mem = sequence_logits(rm, ids, B, T, T);
  test::check_close(sequence_logits(rf, ids, B, T, T), from_mem, 0.0, 1.0, "forward"); // exact
  test::check_close(sequence_logits(rf, ids, B, T, 0), from_mem, 1e-5, 1.0, "decode");
  test::check_close(from_mem, want, 1e-4, 1.0, "golden");
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RODIMUS_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define RODIMUS_TEST_ASAN 1
#endif

TEST_CASE("sequence_logits of many short rows keeps a bounded state pool") {
  // An input_ids of [5000, 1] (39 KB) once made a state pool of 5000 sequences: 4.7 GB for the
  // tiny-coder. Rows now run sequence_logits_group at a time: the same call fits in 1.5 GB of
  // address space (checked in a forked child under RLIMIT_AS; ASan reserves far more than that,
  // so there only the grouping's results are checked).
  const auto w = model_weights::load(test::source_dir() + "/examples/models/tiny-coder");
  model_runner<scalar> runner(w);
  const index_t V = w.config().vocab_size, B = 5000;
  std::vector<std::int64_t> ids(static_cast<std::size_t>(B));
  for (index_t b = 0; b < B; ++b)
    ids[std::size_t(b)] = (b * 7919) % V;
#ifndef RODIMUS_TEST_ASAN
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    rlimit rl{};
    rl.rlim_cur = rl.rlim_max = rlim_t(1536) << 20;
    if (::setrlimit(RLIMIT_AS, &rl) != 0) ::_exit(3);
    try {
      const auto lg = sequence_logits(runner, ids, B, 1, 1);
      ::_exit(lg.size() == std::size_t(B * V) ? 0 : 4);
    } catch (...) {
      ::_exit(5);
    }
  }
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
#endif
  // The grouping gives each row what it gets alone (rows from both sides of a group boundary).
  const index_t n = sequence_logits_group + 3;
  const std::vector<std::int64_t> head(ids.begin(), ids.begin() + n);
  const auto all = sequence_logits(runner, head, n, 1, 1);
  for (index_t b : {index_t(0), sequence_logits_group - 1, sequence_logits_group, n - 1}) {
    const auto one = sequence_logits(runner, {head[std::size_t(b)]}, 1, 1, 1);
    const std::vector<float> row(all.begin() + std::ptrdiff_t(b * V),
                                 all.begin() + std::ptrdiff_t((b + 1) * V));
    test::check_close(row, one, 1e-6, 1.0, "row of a grouped call vs alone");
  }
}
