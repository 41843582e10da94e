// Model-level state invariants on the golden checkpoints, with fresh random token ids each run:
// batch invariance, packed (different lengths) == separate, prefill continuing from a state == one
// prefill, state save/restore round trip, state sizes, and the errors of bad input.
#include "support/test_support.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include "rodimus/backend/scalar/all.hpp"
#include "rodimus/runtime/runner.hpp"

using namespace rodimus;

namespace {

std::vector<std::int64_t> random_ids(std::mt19937_64& g, std::size_t n, std::int64_t vocab) {
  std::uniform_int_distribution<std::int64_t> d(0, vocab - 1);
  std::vector<std::int64_t> v(n);
  for (auto& x : v)
    x = d(g);
  return v;
}

std::vector<float> rows(const std::vector<float>& v, index_t first, index_t count, index_t width) {
  return std::vector<float>(v.begin() + std::ptrdiff_t(first * width),
                            v.begin() + std::ptrdiff_t((first + count) * width));
}

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

// Every model kind: the pure recurrent one, the hybrid with a window shorter than the sequences,
// and the one with every option.
const char* const models[] = {"rodimus_tiny", "rodimus_plus_tiny", "rodimus_plus_opts"};

} // namespace

TEST_CASE("a sequence's logits do not depend on the other sequences of its batch") {
  auto g = test::rng(11);
  for (const char* name : models) {
    INFO(name);
    const auto w = model_weights::load(test::golden_dir() + "/" + name);
    const index_t V = w.config().vocab_size, T = 45;
    model_runner<scalar> runner(w);
    const auto alone = random_ids(g, std::size_t(T), V);
    std::vector<std::int64_t> batch = random_ids(g, std::size_t(3 * T), V);
    std::copy(alone.begin(), alone.end(), batch.begin() + T); // row 1
    const auto one = sequence_logits(runner, alone, 1, T, T);
    const auto three = sequence_logits(runner, batch, 3, T, T);
    test::check_close(rows(three, T, T, V), one, 1e-6, 1.0, "forward, row 1 of 3 vs alone");
    const auto three_split = sequence_logits(runner, batch, 3, T, 20);
    test::check_close(rows(three_split, T, T, V), one, 1e-5, 1.0, "split:20, row 1 of 3 vs alone");
  }
}

TEST_CASE("packed sequences of different lengths equal separate prefills, and continue alike") {
  auto g = test::rng(12);
  for (const char* name : models) {
    INFO(name);
    const auto w = model_weights::load(test::golden_dir() + "/" + name);
    const index_t V = w.config().vocab_size;
    model_runner<scalar> runner(w);
    std::uniform_int_distribution<index_t> len(1, 60);
    const std::vector<index_t> L = {len(g), 0, len(g), 3, 61};
    std::vector<std::int64_t> packed, cu = {0};
    std::vector<std::vector<std::int64_t>> seqs;
    for (index_t l : L) {
      seqs.push_back(random_ids(g, std::size_t(l), V));
      packed.insert(packed.end(), seqs.back().begin(), seqs.back().end());
      cu.push_back(cu.back() + l);
    }
    state_pool pool = runner.make_pool(8);
    std::vector<std::int32_t> slots;
    for (std::size_t n = 0; n < L.size(); ++n)
      slots.push_back(pool.acquire());
    std::swap(slots[0], slots[3]); // slots need not be in order
    const auto lg = runner.prefill(pool, slots, packed, cu);
    // One decode step of the batch, every sequence at its own position.
    const auto next = random_ids(g, L.size(), V);
    const auto stepped = runner.decode(pool, slots, next);
    for (std::size_t n = 0; n < L.size(); ++n) {
      INFO("sequence " << n << " of length " << L[n]);
      CHECK(pool.position(slots[n]) == L[n] + 1);
      std::vector<std::int64_t> longer = seqs[n];
      longer.push_back(next[n]);
      state_pool solo = runner.make_pool(1);
      const int s = solo.acquire();
      const auto want = runner.prefill(solo, {s}, longer, {0, L[n] + 1});
      test::check_close(rows(lg, cu[n], L[n], V), rows(want, 0, L[n], V), 1e-5, 1.0,
                        "packed vs separate");
      test::check_close(rows(stepped, index_t(n), 1, V), rows(want, L[n], 1, V), 1e-5, 1.0,
                        "batched decode at different positions vs separate prefill");
    }
    // last-position logits equal the last rows of the full logits
    state_pool p2 = runner.make_pool(8);
    std::vector<std::int32_t> s2;
    for (std::size_t n = 0; n < L.size(); ++n)
      s2.push_back(p2.acquire());
    const auto lastrows = runner.prefill(p2, s2, packed, cu, logits_for::last_position);
    for (std::size_t n = 0; n < L.size(); ++n) {
      if (L[n] == 0) {
        CHECK(test::max_abs(rows(lastrows, index_t(n), 1, V)) == 0.0);
        continue;
      }
      test::check_close(rows(lastrows, index_t(n), 1, V), rows(lg, cu[n + 1] - 1, 1, V), 1e-6, 1.0,
                        "last position");
    }
  }
}

TEST_CASE("prefill continuing from a state equals one prefill") {
  auto g = test::rng(13);
  for (const char* name : models) {
    INFO(name);
    const auto w = model_weights::load(test::golden_dir() + "/" + name);
    const index_t V = w.config().vocab_size, T = 90;
    model_runner<scalar> runner(w);
    const auto ids = random_ids(g, std::size_t(T), V);
    const auto full = sequence_logits(runner, ids, 1, T, T);
    // Chunks shorter and longer than the attention window (window_left 16 / 24), and single tokens.
    std::uniform_int_distribution<index_t> cut(1, 40);
    state_pool pool = runner.make_pool(2);
    const int s = pool.acquire();
    std::vector<float> got;
    for (index_t t = 0; t < T;) {
      const index_t n = std::min(T - t, cut(g));
      std::vector<std::int64_t> chunk(ids.begin() + t, ids.begin() + t + n);
      const auto lg = runner.prefill(pool, {s}, chunk, {0, n});
      got.insert(got.end(), lg.begin(), lg.end());
      t += n;
    }
    CHECK(pool.position(s) == T);
    test::check_close(got, full, 1e-5, 1.0, "chunked prefill vs one prefill");
  }
}

TEST_CASE("state save and restore round trip") {
  auto g = test::rng(14);
  for (const char* name : models) {
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
    test::check_close(got, rows(full, P, T - P, V), 1e-5, 1.0, "decode after restore vs forward");

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
