// The shipped tiny-coder (examples/models/tiny-coder, a trained Rodimus+ in bf16): its logits equal
// the independent float64 implementation's `logits_bf16_weights`, and greedy generation through the
// decode path reproduces `greedy_ids_bf16_weights` token for token. When the f32 original is
// present
// (../shared/tiny-coder/model.safetensors), also `logits` and `greedy_ids` of the official code.
#include "support/test_support.hpp"

#include <algorithm>
#include <fstream>

#include "rodimus/model/runner.hpp"

using namespace rodimus;

namespace {

// Greedy continuation of `prompt` by `n` tokens: prefill, then one decode step per token.
std::vector<std::int64_t> greedy(model_runner<scalar>& runner,
                                 const std::vector<std::int64_t>& prompt, std::size_t n) {
  const index_t V = runner.config().vocab_size;
  state_pool pool = runner.make_pool(1);
  const int s = pool.acquire();
  std::vector<float> lg = runner.prefill(pool, {s}, prompt, {0, std::int64_t(prompt.size())},
                                         logits_for::last_position);
  std::vector<std::int64_t> out;
  while (out.size() < n) {
    REQUIRE(lg.size() == std::size_t(V));
    out.push_back(std::int64_t(std::max_element(lg.begin(), lg.end()) - lg.begin()));
    if (out.size() < n) lg = runner.decode(pool, {s}, {out.back()});
  }
  return out;
}

void check_checkpoint(const std::string& dir, const char* logits_name, const char* greedy_name) {
  INFO("checkpoint " << dir);
  const auto w = model_weights::load(dir);
  const auto e = io::safetensors_file::open(test::source_dir() +
                                            "/examples/models/tiny-coder/expected.safetensors");
  const auto& shape = e.at("input_ids").shape;
  const index_t B = shape[0], T = shape[1];
  const auto ids = e.read<std::int64_t>("input_ids");
  const auto want = e.read<float>(logits_name);
  model_runner<scalar> runner(w);
  test::check_close(sequence_logits(runner, ids, B, T, T), want, 1e-4, 1.0, "forward");
  test::check_close(sequence_logits(runner, ids, B, T, 0), want, 1e-4, 1.0, "decode");
  test::check_close(sequence_logits(runner, ids, B, T, T / 2), want, 1e-4, 1.0, "split");

  const auto prompt = e.read<std::int64_t>("greedy_prompt_ids");
  const auto expected = e.read<std::int64_t>(greedy_name);
  const auto got = greedy(runner, prompt, expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("generated token " << i);
    REQUIRE(got[i] == expected[i]);
  }
}

} // namespace

TEST_CASE("tiny-coder bf16: logits and greedy generation through the decode path") {
  check_checkpoint(test::source_dir() + "/examples/models/tiny-coder", "logits_bf16_weights",
                   "greedy_ids_bf16_weights");
}

TEST_CASE("tiny-coder f32 original (when present): the official code's logits and greedy ids") {
  const std::string dir = test::source_dir() + "/../shared/tiny-coder";
  if (!std::ifstream(dir + "/model.safetensors").good()) {
    MESSAGE("skipped: " << dir << "/model.safetensors is not present");
    return;
  }
  check_checkpoint(dir, "logits", "greedy_ids");
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
