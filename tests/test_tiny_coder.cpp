// The shipped tiny-coder (examples/models/tiny-coder, a trained Rodimus+ in bf16): its logits equal
// the independent float64 implementation's `logits_bf16_weights`, and greedy generation through the
// decode path reproduces `greedy_ids_bf16_weights` token for token. When the f32 original is
// present
// (../shared/tiny-coder/model.safetensors), also `logits` and `greedy_ids` of the official code.
#include "cases/model_cases.hpp"

#include <algorithm>
#include <fstream>


using namespace rodimus;

TEST_CASE("tiny-coder bf16: logits and greedy generation through the decode path") {
  test::check_tiny_coder(test::source_dir() + "/examples/models/tiny-coder",
                         "logits_bf16_weights", "greedy_ids_bf16_weights", scalar{}, 1e-4);
}

TEST_CASE("tiny-coder f32 original (when present): the official code's logits and greedy ids") {
  const std::string dir = test::source_dir() + "/../shared/tiny-coder";
  if (!std::ifstream(dir + "/model.safetensors").good()) {
    MESSAGE("skipped: " << dir << "/model.safetensors is not present");
    return;
  }
  test::check_tiny_coder(dir, "logits", "greedy_ids", scalar{}, 1e-4);
}
