// The whole model on the scalar backend against the official reference's golden fixtures
// (tests/data/golden, README there): full forward, token-by-token decode from an empty state, and
// prefill of P tokens followed by decode, for every checkpoint; the 16-bit checkpoints against
// `logits_bf16_weights` (computed in f32). Layer 0's mixer / attention / FFN outputs where present.
// Bound: max|logits - expected| <= 1e-4 * max(1, max|expected|). The scalar reference and the SIMD
// CPU backend (two threads) run the same blocks; the bodies are in tests/cases/model_cases.hpp.
#include "cases/model_cases.hpp"

#include "rodimus/backend/cpu/all.hpp"

using namespace rodimus;
using test::check_golden_model;

TEST_CASE("golden rodimus_tiny: forward, decode and split equal the reference") {
  check_golden_model<scalar>({"rodimus_tiny", "rodimus_tiny", "logits", 40}, scalar{}, 1e-4);
}
TEST_CASE("golden rodimus_plus_tiny: forward, decode and split equal the reference") {
  check_golden_model<scalar>({"rodimus_plus_tiny", "rodimus_plus_tiny", "logits", 40}, scalar{},
                             1e-4);
}
TEST_CASE("golden rodimus_plus_opts: forward, decode and split equal the reference") {
  check_golden_model<scalar>({"rodimus_plus_opts", "rodimus_plus_opts", "logits", 35}, scalar{},
                             1e-4);
}
TEST_CASE("golden bf16 checkpoints equal logits_bf16_weights computed in f32") {
  check_golden_model<scalar>({"rodimus_tiny_bf16", "rodimus_tiny", "logits_bf16_weights", 40},
                             scalar{}, 1e-4);
  check_golden_model<scalar>(
      {"rodimus_plus_tiny_bf16", "rodimus_plus_tiny", "logits_bf16_weights", 40}, scalar{}, 1e-4);
  check_golden_model<scalar>(
      {"rodimus_plus_opts_bf16", "rodimus_plus_opts", "logits_bf16_weights", 35}, scalar{}, 1e-4);
}
TEST_CASE("cpu backend: every golden checkpoint equals the reference") {
  thread_pool pool(2);
  const cpu<> be{&pool};
  check_golden_model({"rodimus_tiny", "rodimus_tiny", "logits", 40}, be, 1e-4);
  check_golden_model({"rodimus_plus_tiny", "rodimus_plus_tiny", "logits", 40}, be, 1e-4);
  check_golden_model({"rodimus_plus_opts", "rodimus_plus_opts", "logits", 35}, be, 1e-4);
  check_golden_model({"rodimus_plus_opts_bf16", "rodimus_plus_opts", "logits_bf16_weights", 35}, be,
                     1e-4);
  check_golden_model({"rodimus_plus_tiny_bf16", "rodimus_plus_tiny", "logits_bf16_weights", 40}, be,
                     1e-4);
}

TEST_CASE("a padding sequence or row (slot -1) leaves the others' logits and positions alone") {
  test::check_padding_rows(scalar{}, 1e-6);
  thread_pool pool(2);
  test::check_padding_rows(cpu<>{&pool}, 1e-5);
}

TEST_CASE("decode_async (ids and logits in the backend's memory) equals decode") {
  test::check_decode_async(scalar{}, 1e-6);
  thread_pool pool(2);
  test::check_decode_async(cpu<>{&pool}, 1e-6);
}
