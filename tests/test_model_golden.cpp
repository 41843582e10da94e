// The whole model on the scalar backend against the official reference's golden fixtures
// (tests/data/golden, README there): full forward, token-by-token decode from an empty state, and
// prefill of P tokens followed by decode, for every checkpoint; the 16-bit checkpoints against
// `logits_bf16_weights` (computed in f32). Layer 0's mixer / attention / FFN outputs where present.
// Bound: max|logits - expected| <= 1e-4 * max(1, max|expected|). The scalar reference and the SIMD
// CPU backend (two threads) run the same blocks.
#include "support/test_support.hpp"

#include "rodimus/backend/cpu/all.hpp"
#include "rodimus/model/runner.hpp"

using namespace rodimus;

namespace {

struct golden_case {
  const char* model;    // checkpoint folder
  const char* expected; // folder holding expected.safetensors
  const char* tensor;   // expected logits tensor
  index_t
      decode_prefix; // report.json's decode_prefix (the reference decoder's first bad step follows)
};

template <class Backend> void check_model(const golden_case& gc, Backend be = Backend{}) {
  INFO("model " << gc.model);
  const auto w = model_weights::load(test::golden_dir() + "/" + gc.model);
  const auto e = test::open_golden(std::string(gc.expected) + "/expected.safetensors");
  const auto& shape = e.at("input_ids").shape;
  REQUIRE(shape.size() == 2);
  const index_t B = shape[0], T = shape[1];
  const auto ids = e.read<std::int64_t>("input_ids");
  const auto want = e.read<float>(gc.tensor);
  REQUIRE(want.size() == std::size_t(B * T * w.config().vocab_size));
  model_runner<Backend> runner(w, be);

  layer0_outputs l0;
  test::check_close(sequence_logits(runner, ids, B, T, T, &l0), want, 1e-4, 1.0, "forward");
  if (std::string(gc.tensor) == "logits") {
    test::check_close(l0.mixer_out, e.read<float>("layers.0.mixer.out"), 1e-4, 1.0,
                      "layers.0.mixer.out");
    if (e.find("layers.0.attn.out")) {
      REQUIRE(w.config().is_plus());
      test::check_close(l0.attn_out, e.read<float>("layers.0.attn.out"), 1e-4, 1.0,
                        "layers.0.attn.out");
      test::check_close(l0.ffn_out, e.read<float>("layers.0.ffn.out"), 1e-4, 1.0,
                        "layers.0.ffn.out");
    }
  }
  test::check_close(sequence_logits(runner, ids, B, T, 0), want, 1e-4, 1.0, "decode");
  // Splits: one token, the reference decoder's prefix (its decode departs right after it for
  // rodimus_plus), beyond the attention window, and all but one.
  for (index_t P : {index_t(1), gc.decode_prefix, T - 1}) {
    INFO("split:" << P);
    test::check_close(sequence_logits(runner, ids, B, T, P), want, 1e-4, 1.0, "split");
  }
}

} // namespace

TEST_CASE("golden rodimus_tiny: forward, decode and split equal the reference") {
  check_model<scalar>({"rodimus_tiny", "rodimus_tiny", "logits", 40});
}
TEST_CASE("golden rodimus_plus_tiny: forward, decode and split equal the reference") {
  check_model<scalar>({"rodimus_plus_tiny", "rodimus_plus_tiny", "logits", 40});
}
TEST_CASE("golden rodimus_plus_opts: forward, decode and split equal the reference") {
  check_model<scalar>({"rodimus_plus_opts", "rodimus_plus_opts", "logits", 35});
}
TEST_CASE("golden bf16 checkpoints equal logits_bf16_weights computed in f32") {
  check_model<scalar>({"rodimus_tiny_bf16", "rodimus_tiny", "logits_bf16_weights", 40});
  check_model<scalar>({"rodimus_plus_tiny_bf16", "rodimus_plus_tiny", "logits_bf16_weights", 40});
  check_model<scalar>({"rodimus_plus_opts_bf16", "rodimus_plus_opts", "logits_bf16_weights", 35});
}
TEST_CASE("cpu backend: every golden checkpoint equals the reference") {
  thread_pool pool(2);
  const cpu<> be{&pool};
  check_model({"rodimus_tiny", "rodimus_tiny", "logits", 40}, be);
  check_model({"rodimus_plus_tiny", "rodimus_plus_tiny", "logits", 40}, be);
  check_model({"rodimus_plus_opts", "rodimus_plus_opts", "logits", 35}, be);
  check_model({"rodimus_plus_opts_bf16", "rodimus_plus_opts", "logits_bf16_weights", 35}, be);
  check_model({"rodimus_plus_tiny_bf16", "rodimus_plus_tiny", "logits_bf16_weights", 40}, be);
}
