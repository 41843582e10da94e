// Whole-model checks written once for every backend (stamped in tests/test_model_golden.cpp and
// tests/test_tiny_coder.cpp for scalar and cpu, tests/cuda/test_model.cu for CUDA):
//   - the golden checkpoints (tests/data/golden, README there) through the full forward, token by
//     token decode from an empty state, and prefill of P tokens then decode, against the official
//     reference's logits, plus layer 0's mixer / attention / FFN outputs where present;
//   - the shipped tiny-coder: logits and greedy generation through the decode path (argmax on
//     the host and on the backend: decode_greedy);
//   - padding (slot -1, primitives/slots.hpp): a batch with a padding sequence / row gives the
//     other sequences the logits of the batch without it, and moves no position.
// Bounds: max|logits - expected| <= tol * max(1, max|expected|); tol is the stamp's (1e-4 on the
// host backends, which compute in f32 / f64 like the reference; see the CUDA stamp for its own).
#pragma once

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include "rodimus/backend/scalar/all.hpp"
#include "rodimus/runtime/runner.hpp"
#include "support/backend_support.hpp"
#include "support/test_support.hpp"

namespace rodimus::test {

struct golden_case {
  const char* model;     // checkpoint folder
  const char* expected;  // folder holding expected.safetensors
  const char* tensor;    // expected logits tensor
  index_t decode_prefix; // report.json's decode_prefix (the reference decoder's first bad step
                         // follows)
};

template <class Backend>
void check_golden_model(const golden_case& gc, const Backend& be, double tol) {
  INFO("model " << std::string(gc.model));
  const auto w = model_weights::load(golden_dir() + "/" + gc.model);
  const auto e = open_golden(std::string(gc.expected) + "/expected.safetensors");
  const auto& shape = e.at("input_ids").shape;
  REQUIRE(shape.size() == 2);
  const index_t B = shape[0], T = shape[1];
  const auto ids = e.read<std::int64_t>("input_ids");
  const auto want = e.read<float>(gc.tensor);
  REQUIRE(want.size() == std::size_t(B * T * w.config().vocab_size));
  model_runner<Backend> runner(w, be);

  layer0_outputs l0;
  check_close(sequence_logits(runner, ids, B, T, T, &l0), want, tol, 1.0, "forward");
  if (std::string(gc.tensor) == "logits") {
    check_close(l0.mixer_out, e.read<float>("layers.0.mixer.out"), tol, 1.0, "layers.0.mixer.out");
    if (e.find("layers.0.attn.out")) {
      REQUIRE(w.config().is_plus());
      check_close(l0.attn_out, e.read<float>("layers.0.attn.out"), tol, 1.0, "layers.0.attn.out");
      check_close(l0.ffn_out, e.read<float>("layers.0.ffn.out"), tol, 1.0, "layers.0.ffn.out");
    }
  }
  check_close(sequence_logits(runner, ids, B, T, 0), want, tol, 1.0, "decode");
  // Splits: one token, the reference decoder's prefix (its decode departs right after it for
  // rodimus_plus), beyond the attention window, and all but one.
  for (index_t P : {index_t(1), gc.decode_prefix, T - 1}) {
    INFO("split:" << P);
    check_close(sequence_logits(runner, ids, B, T, P), want, tol, 1.0, "split");
  }
}

/// The golden checkpoints of every kind (f32, and 16-bit weights against `logits_bf16_weights`).
inline const golden_case golden_f32_cases[] = {
    {"rodimus_tiny", "rodimus_tiny", "logits", 40},
    {"rodimus_plus_tiny", "rodimus_plus_tiny", "logits", 40},
    {"rodimus_plus_opts", "rodimus_plus_opts", "logits", 35}};
inline const golden_case golden_bf16_cases[] = {
    {"rodimus_tiny_bf16", "rodimus_tiny", "logits_bf16_weights", 40},
    {"rodimus_plus_tiny_bf16", "rodimus_plus_tiny", "logits_bf16_weights", 40},
    {"rodimus_plus_opts_bf16", "rodimus_plus_opts", "logits_bf16_weights", 35}};

/// Greedy continuation of `prompt` by `n` tokens: prefill, then one decode step per token, the
/// argmax taken here from the logits (on_backend = false) or by the runner (decode_greedy).
template <class Backend>
std::vector<std::int64_t> greedy(model_runner<Backend>& runner,
                                 const std::vector<std::int64_t>& prompt, std::size_t n,
                                 bool on_backend = false) {
  const index_t V = runner.config().vocab_size;
  auto pool = runner.make_pool(1);
  const int s = pool.acquire();
  std::vector<float> lg = runner.prefill(pool, {s}, prompt, {0, std::int64_t(prompt.size())},
                                         logits_for::last_position);
  REQUIRE(lg.size() == std::size_t(V));
  std::vector<std::int64_t> out = {
      std::int64_t(std::max_element(lg.begin(), lg.end()) - lg.begin())};
  while (out.size() < n) {
    if (on_backend) {
      const std::vector<std::int64_t> next = runner.decode_greedy(pool, {s}, {out.back()});
      REQUIRE(next.size() == 1);
      out.push_back(next[0]);
      continue;
    }
    lg = runner.decode(pool, {s}, {out.back()});
    REQUIRE(lg.size() == std::size_t(V));
    out.push_back(std::int64_t(std::max_element(lg.begin(), lg.end()) - lg.begin()));
  }
  return out;
}

/// A tiny-coder checkpoint (`dir`): logits in the three modes and the greedy ids.
template <class Backend>
void check_tiny_coder(const std::string& dir, const char* logits_name, const char* greedy_name,
                      const Backend& be, double tol) {
  INFO("checkpoint " << dir);
  const auto w = model_weights::load(dir);
  const auto e =
      io::safetensors_file::open(source_dir() + "/examples/models/tiny-coder/expected.safetensors");
  const auto& shape = e.at("input_ids").shape;
  const index_t B = shape[0], T = shape[1];
  const auto ids = e.read<std::int64_t>("input_ids");
  const auto want = e.read<float>(logits_name);
  model_runner<Backend> runner(w, be);
  check_close(sequence_logits(runner, ids, B, T, T), want, tol, 1.0, "forward");
  check_close(sequence_logits(runner, ids, B, T, 0), want, tol, 1.0, "decode");
  check_close(sequence_logits(runner, ids, B, T, T / 2), want, tol, 1.0, "split");

  const auto prompt = e.read<std::int64_t>("greedy_prompt_ids");
  const auto expected = e.read<std::int64_t>(greedy_name);
  for (bool on_backend : {false, true}) {
    INFO("argmax on the backend: " << on_backend);
    const auto got = greedy(runner, prompt, expected.size(), on_backend);
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      INFO("generated token " << i);
      REQUIRE(got[i] == expected[i]);
    }
  }
}

/// decode_async (ids and logits in the backend's memory, nothing waited for) gives decode()'s
/// logits, step after step, for a batch of sequences continuing from a prefill.
template <class Backend> void check_decode_async(const Backend& be, double tol) {
  const auto w = model_weights::load(golden_dir() + "/rodimus_plus_tiny");
  const index_t V = w.config().vocab_size, B = 3;
  auto g = rng(93);
  std::uniform_int_distribution<std::int64_t> id(0, V - 1);
  std::vector<std::int64_t> prompt(std::size_t(B * 9));
  for (auto& x : prompt)
    x = id(g);
  model_runner<Backend> a(w, be), b(w, be);
  auto pa = a.make_pool(B);
  auto pb = b.make_pool(B);
  std::vector<std::int32_t> sa, sb;
  for (index_t n = 0; n < B; ++n) {
    sa.push_back(pa.acquire());
    sb.push_back(pb.acquire());
  }
  (void)a.prefill_batch(pa, sa, prompt, 9, logits_for::last_position);
  (void)b.prefill_batch(pb, sb, prompt, 9, logits_for::last_position);
  backend_arrays<Backend> mem(be);
  std::vector<std::int64_t> step(static_cast<std::size_t>(B));
  std::vector<float> got(static_cast<std::size_t>(B * V));
  poison(got);
  std::int64_t* ids = mem.put(step);
  float* logits = mem.put(got);
  for (int t = 0; t < 6; ++t) {
    for (auto& x : step)
      x = id(g);
    mem.set(ids, step);
    const std::vector<float> want = a.decode(pa, sa, step);
    b.decode_async(pb, sb, ids, logits);
    mem.get(got, logits); // copy_to_host orders after the queued step
    INFO("step " << t);
    check_close(got, want, tol, 1.0, "decode_async vs decode");
  }
}

/// A prefill and decode steps whose batch holds a padding sequence (slot -1) between two real ones
/// give the real ones the logits of the same batch without it, step after step (so their states
/// evolved alike), and leave every position as the unpadded run does.
template <class Backend> void check_padding_rows(const Backend& be, double tol) {
  const auto w = model_weights::load(golden_dir() + "/rodimus_plus_tiny");
  const index_t V = w.config().vocab_size;
  auto g = rng(97);
  std::uniform_int_distribution<std::int64_t> id(0, V - 1);
  std::vector<std::int64_t> ids(23);
  for (auto& x : ids)
    x = id(g);
  model_runner<Backend> a(w, be), b(w, be);
  auto pa = a.make_pool(2);
  auto pb = b.make_pool(2);
  const std::vector<std::int32_t> sa = {pa.acquire(), padding_slot, pa.acquire()};
  const std::vector<std::int32_t> sb = {pb.acquire(), pb.acquire()};
  // a: sequences of 9, 5 (padding) and 9 tokens; b: the first and the last.
  std::vector<std::int64_t> ids_b(ids.begin(), ids.begin() + 9);
  ids_b.insert(ids_b.end(), ids.begin() + 14, ids.end());
  auto rows_of = [&](const std::vector<float>& lg, std::initializer_list<std::size_t> rows) {
    std::vector<float> out;
    for (std::size_t r : rows)
      out.insert(out.end(), lg.begin() + std::ptrdiff_t(r) * V,
                 lg.begin() + std::ptrdiff_t(r + 1) * V);
    return out;
  };
  const auto la = a.prefill(pa, sa, ids, {0, 9, 14, 23}, logits_for::last_position);
  const auto lb = b.prefill(pb, sb, ids_b, {0, 9, 18}, logits_for::last_position);
  check_close(rows_of(la, {0, 2}), lb, tol, 1.0, "prefill with a padding sequence");
  for (int t = 0; t < 3; ++t) {
    INFO("step " << t);
    const std::vector<std::int64_t> step = {id(g), id(g), id(g)};
    const auto da = a.decode(pa, sa, step);
    const auto db = b.decode(pb, sb, {step[0], step[2]});
    check_close(rows_of(da, {0, 2}), db, tol, 1.0, "decode with a padding row");
  }
  CHECK(pa.position(sa[0]) == pb.position(sb[0]));
  CHECK(pa.position(sa[2]) == pb.position(sb[1]));
  CHECK(pa.position(sa[0]) == 12);
}

} // namespace rodimus::test
