// Model-level state invariants on the golden checkpoints, with fresh random token ids each run:
// batch invariance, packed (different lengths) == separate, prefill continuing from a state == one
// prefill (bodies in tests/cases/model_state_cases.hpp, on the scalar and the cpu backend), state
// save/restore round trip, state sizes, and the errors of bad input (scalar).
#include "support/test_support.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include "cases/model_state_cases.hpp"
#include "rodimus/backend/cpu/all.hpp"
#include "rodimus/backend/scalar/all.hpp"
#include "rodimus/runtime/runner.hpp"

using namespace rodimus;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const rodimus::error& e) {
    return e.what();
  }
  return "<no error>";
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("rodimus_state_" + std::to_string(test::run_seed() % 1000000007ull) + "_" + name))
      .string();
}

using test::random_ids;
using test::rows_of;
using test::state_models;

} // namespace

TEST_CASE("a sequence's logits do not depend on the other sequences of its batch") {
  test::check_batch_invariance(scalar{}, 1e-6);
  thread_pool pool(2);
  test::check_batch_invariance(cpu<>{&pool}, 1e-5);
}

TEST_CASE("packed sequences of different lengths equal separate prefills, and continue alike") {
  test::check_packed_different_lengths(scalar{}, 1e-5);
  thread_pool pool(2);
  test::check_packed_different_lengths(cpu<>{&pool}, 1e-5);
}

TEST_CASE("prefill continuing from a state equals one prefill") {
  test::check_chunked_prefill(scalar{}, 1e-5);
  thread_pool pool(2);
  test::check_chunked_prefill(cpu<>{&pool}, 1e-5);
}

TEST_CASE("state save and restore round trip") {
  auto g = test::rng(14);
  for (const char* name : state_models) {
    INFO(name);
    const auto w = model_weights::load(test::golden_dir() + "/" + name);
    const index_t V = w.config().vocab_size, T = 70, P = 41;
    model_runner<scalar> runner(w);
    const auto ids = random_ids(g, std::size_t(T), V);
    const auto full = sequence_logits(runner, ids, 1, T, T);

    state_pool a = runner.make_pool(1);
    const int sa = a.acquire();
    (void)runner.prefill(a, {sa}, std::vector<std::int64_t>(ids.begin(), ids.begin() + P), {0, P});
    const std::string path = temp_path(std::string(name) + ".safetensors");
    a.save(sa, path);

    state_pool b = runner.make_pool(3);
    (void)b.acquire();
    const int sb = b.acquire(); // a different slot of a different pool
    b.load(sb, path);
    CHECK(b.position(sb) == P);
    std::vector<float> got;
    for (index_t t = P; t < T; ++t) {
      const auto lg = runner.decode(b, {sb}, {ids[std::size_t(t)]});
      got.insert(got.end(), lg.begin(), lg.end());
    }
    test::check_close(got, rows_of(full, P, T - P, V), 1e-5, 1.0,
                      "decode after restore vs forward");

    // A state of another model is refused, naming the tensor, and the slot is left as it was.
    const std::string other =
        std::string(name) == "rodimus_tiny" ? "rodimus_plus_tiny" : "rodimus_tiny";
    const auto w2 = model_weights::load(test::golden_dir() + "/" + other);
    state_pool c = model_runner<scalar>(w2).make_pool(1);
    const int sc = c.acquire();
    const std::string msg = error_of([&] { c.load(sc, path); });
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("layers.") != std::string::npos);
    CHECK(c.position(sc) == 0);

    // A truncated state file is refused, naming the file, and the slot is left as it was.
    const std::string cut = temp_path(std::string(name) + ".cut.safetensors");
    {
      std::ifstream in(path, std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::ofstream out(cut, std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), std::streamsize(bytes.size() / 2));
    }
    const std::int64_t before = b.position(sb);
    const std::string cut_msg = error_of([&] { b.load(sb, cut); });
    CHECK(cut_msg.find(cut) != std::string::npos);
    CHECK(b.position(sb) == before);
    std::filesystem::remove(cut);
    std::filesystem::remove(path);
  }
}

TEST_CASE("state bytes per sequence") {
  // Rodimus-1.4B (docs/MODEL.md §6.2): per layer the f32 GLA state N*E*4 = 1 MiB and the conv state
  // E*4 inputs (kept in f32 here: 64 KiB); 48 layers, plus the position counter.
  model_config c14;
  c14.d_model = 2048;
  c14.n_layer = 48;
  CHECK(state_pool<>::bytes_per_sequence(c14) == 48u * (1048576u + 65536u) + 8u);
  // Rodimus+ adds a window ring of window_size // 2 + 1 positions of (1 + H) heads of d_h f32.
  model_config cp = c14;
  cp.block_type = block_kind::rodimus_plus;
  cp.n_layer = 24;
  cp.num_heads = 16;
  cp.num_heads_k = 1;
  cp.num_heads_v = 16;
  cp.window_size = 4096;
  CHECK(state_pool<>::bytes_per_sequence(cp) ==
        24u * (1048576u + 65536u + 2049u * 17u * 128u * 4u) + 8u);
}

TEST_CASE("bad input is reported and leaves the states untouched") {
  const auto w = model_weights::load(test::golden_dir() + "/rodimus_plus_tiny");
  model_runner<scalar> runner(w);
  state_pool pool = runner.make_pool(2);
  const int s = pool.acquire();
  std::string e = error_of([&] { (void)runner.prefill(pool, {s}, {1, 2, 256, 3}, {0, 4}); });
  CHECK(e.find("256") != std::string::npos);
  CHECK(e.find("vocabulary size 256") != std::string::npos);
  e = error_of([&] { (void)runner.decode(pool, {s}, {-1}); });
  CHECK(e.find("-1") != std::string::npos);
  CHECK(pool.position(s) == 0);
  e = error_of([&] { (void)runner.decode(pool, {s, s}, {1, 2}); });
  CHECK(e.find("twice") != std::string::npos);
  e = error_of([&] { (void)runner.decode(pool, {5}, {1}); });
  CHECK(e.find("slot 5") != std::string::npos);
  e = error_of([&] { (void)runner.decode(pool, {1}, {1}); }); // slot 1 was never acquired
  CHECK(e.find("not in use") != std::string::npos);
  e = error_of([&] { (void)runner.prefill(pool, {s}, {1, 2, 3}, {0, 2}); });
  CHECK(e.find("cu_seqlens") != std::string::npos);
  CHECK(pool.position(s) == 0);
}

TEST_CASE("a state of another model with the same shapes, or holding NaN, is refused") {
  const auto w = model_weights::load(test::golden_dir() + "/rodimus_plus_tiny");
  const model_config& cfg = w.config();
  state_pool a(cfg, 1);
  const int sa = a.acquire();
  a.positions()[sa] = 3;
  const std::string path = temp_path("mine.safetensors");
  a.save(sa, path);

  // Same shapes, another model: it loaded silently before.
  model_config other = cfg;
  other.norm_epsilon *= 2;
  state_pool b(other, 1);
  const int sb = b.acquire();
  std::string e = error_of([&] { b.load(sb, path); });
  INFO("message: " << e);
  CHECK(e.find(path) != std::string::npos);
  CHECK(e.find("another model") != std::string::npos);
  CHECK(e.find("norm_epsilon") != std::string::npos);
  CHECK(b.position(sb) == 0);
  // The same configuration loads.
  state_pool c(cfg, 1);
  const int sc = c.acquire();
  c.load(sc, path);
  CHECK(c.position(sc) == 3);

  // A state holding NaN is refused, naming the tensor, and the slot is left as it was.
  a.layer(1).mixer.gla.data[7] = std::nanf("");
  a.save(sa, path);
  e = error_of([&] { c.load(sc, path); });
  CHECK(e.find("'layers.1.gla'") != std::string::npos);
  CHECK(e.find("NaN") != std::string::npos);
  CHECK(c.position(sc) == 3);

  // A file without the configuration is not a state of this model.
  {
    const io::safetensors_file f = io::safetensors_file::open(path);
    std::vector<io::tensor_to_write> ts;
    for (const auto& t : f.tensors())
      ts.push_back({t.name, t.type, t.shape, t.bytes});
    io::write_safetensors(path + ".bare", ts);
  }
  e = error_of([&] { c.load(sc, path + ".bare"); });
  CHECK(e.find("no model configuration") != std::string::npos);
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".bare");
}
