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
  test::check_tiny_coder(test::source_dir() + "/examples/models/tiny-coder", "logits_bf16_weights",
                         "greedy_ids_bf16_weights", scalar{}, 1e-4);
}

TEST_CASE("tiny-coder f32 original (when present): the official code's logits and greedy ids") {
  const std::string dir = test::source_dir() + "/../shared/tiny-coder";
  if (!std::ifstream(dir + "/model.safetensors").good()) {
    MESSAGE("skipped: " << dir << "/model.safetensors is not present");
    return;
  }
  test::check_tiny_coder(dir, "logits", "greedy_ids", scalar{}, 1e-4);
}

TEST_CASE("tiny-coder README: every file its table lists is shipped") {
  const std::string dir = test::source_dir() + "/examples/models/tiny-coder";
  std::ifstream readme(dir + "/README.md");
  REQUIRE(readme.good());
  // The rows of the first table ("| file | what |"): the first cell names files, comma-separated.
  std::string line;
  bool in_table = false;
  int files = 0;
  while (std::getline(readme, line)) {
    if (line.rfind("| file |", 0) == 0) {
      in_table = true;
      continue;
    }
    if (!in_table || line.rfind("| ---", 0) == 0) continue;
    if (line.rfind("|", 0) != 0) break; // the end of the table
    const std::string cell = line.substr(2, line.find(" |", 1) - 2);
    std::size_t pos = 0;
    while (pos < cell.size()) {
      const std::size_t comma = std::min(cell.find(", ", pos), cell.size());
      const std::string name = cell.substr(pos, comma - pos);
      INFO("README lists " << name);
      CHECK(std::ifstream(dir + "/" + name).good());
      ++files;
      pos = comma + 2;
    }
  }
  CHECK(files >= 5);
}
