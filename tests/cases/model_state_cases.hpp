// Model-level state invariants written once for every backend (stamped in
// tests/test_model_state.cpp for scalar and cpu, tests/cuda/test_model.cu for CUDA), on the golden
// checkpoints of every kind (the pure recurrent one, the hybrid with a window shorter than the
// sequences, the one with every option), with fresh random token ids each run:
//   - a sequence's logits do not depend on the other sequences of its batch (forward and split);
//   - packed sequences of different lengths (one empty, one of 61 tokens), on slots out of order,
//     equal separate prefills, one decode step of the batch equals each sequence's own prefill
//     one token longer, and last-position logits equal the last rows of the full ones;
//   - a prefill continuing from a state, in chunks shorter and longer than the attention window
//     and single tokens, equals one prefill.
// Bounds: max|got - want| <= tol * max(1, max|want|), tol the stamp's (the two computations of
// each check sum in different orders or batch shapes: f32 rounding apart on the host backends; on
// CUDA different kernels, GEMV against cuBLAS).
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "rodimus/runtime/runner.hpp"
#include "support/test_support.hpp"

namespace rodimus::test {

/// n token ids drawn uniformly from [0, vocab).
inline std::vector<std::int64_t> random_ids(std::mt19937_64& g, std::size_t n, std::int64_t vocab) {
  std::uniform_int_distribution<std::int64_t> d(0, vocab - 1);
  std::vector<std::int64_t> v(n);
  for (auto& x : v)
    x = d(g);
  return v;
}

/// Rows [first, first + count) of row-major rows of `width` values.
inline std::vector<float> rows_of(const std::vector<float>& v, index_t first, index_t count,
                                  index_t width) {
  return std::vector<float>(v.begin() + std::ptrdiff_t(first * width),
                            v.begin() + std::ptrdiff_t((first + count) * width));
}

/// The golden checkpoints of every model kind.
inline const char* const state_models[] = {"rodimus_tiny", "rodimus_plus_tiny",
                                           "rodimus_plus_opts"};

/// f(runner, V) with a runner on `be` for each checkpoint of state_models (V its vocabulary).
template <class Backend, class F> void for_each_state_model(const Backend& be, F&& f) {
  for (const char* name : state_models) {
    INFO(name);
    const auto w = model_weights::load(golden_dir() + "/" + name);
    model_runner<Backend> runner(w, be);
    f(runner, index_t(w.config().vocab_size));
  }
}

template <class Backend> void check_batch_invariance(const Backend& be, double tol) {
  auto g = rng(11);
  for_each_state_model(be, [&](model_runner<Backend>& runner, index_t V) {
    const index_t T = 45;
    const auto alone = random_ids(g, std::size_t(T), V);
    std::vector<std::int64_t> batch = random_ids(g, std::size_t(3 * T), V);
    std::copy(alone.begin(), alone.end(), batch.begin() + T); // row 1
    const auto one = sequence_logits(runner, alone, 1, T, T);
    const auto three = sequence_logits(runner, batch, 3, T, T);
    check_close(rows_of(three, T, T, V), one, tol, 1.0, "forward, row 1 of 3 vs alone");
    const auto three_split = sequence_logits(runner, batch, 3, T, 20);
    check_close(rows_of(three_split, T, T, V), one, 10 * tol, 1.0, "split:20, row 1 of 3 vs alone");
  });
}

template <class Backend> void check_packed_different_lengths(const Backend& be, double tol) {
  auto g = rng(12);
  for_each_state_model(be, [&](model_runner<Backend>& runner, index_t V) {
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
      check_close(rows_of(lg, cu[n], L[n], V), rows_of(want, 0, L[n], V), tol, 1.0,
                  "packed vs separate");
      check_close(rows_of(stepped, index_t(n), 1, V), rows_of(want, L[n], 1, V), tol, 1.0,
                  "batched decode at different positions vs separate prefill");
    }
    // Last-position logits equal the last rows of the full logits.
    state_pool p2 = runner.make_pool(8);
    std::vector<std::int32_t> s2;
    for (std::size_t n = 0; n < L.size(); ++n)
      s2.push_back(p2.acquire());
    const auto lastrows = runner.prefill(p2, s2, packed, cu, logits_for::last_position);
    for (std::size_t n = 0; n < L.size(); ++n) {
      if (L[n] == 0) {
        CHECK(max_abs(rows_of(lastrows, index_t(n), 1, V)) == 0.0);
        continue;
      }
      check_close(rows_of(lastrows, index_t(n), 1, V), rows_of(lg, cu[n + 1] - 1, 1, V), tol / 10,
                  1.0, "last position (the same blocks; only the head's rows differ)");
    }
  });
}

template <class Backend> void check_chunked_prefill(const Backend& be, double tol) {
  auto g = rng(13);
  for_each_state_model(be, [&](model_runner<Backend>& runner, index_t V) {
    const index_t T = 90;
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
    check_close(got, full, tol, 1.0, "chunked prefill vs one prefill");
  });
}

} // namespace rodimus::test
