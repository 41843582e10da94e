// `rodimus quantize` end to end: tiny-coder saved in q4, then `rodimus logits` on the saved folder
// (no --weights) writes the logits of `rodimus logits --weights q4` on the original, bit for bit
// (scalar backend); --weights q8 on the saved q4 folder is refused naming both formats; bad usage
// exits 1 with a message. `inspect` lists the saved folder's quantised tensors.
#include "rodimus/io/safetensors.hpp"
#include "support/cli_support.hpp"
#include "support/temp_dir.hpp"
#include "support/test_support.hpp"

#include <sys/wait.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

using namespace rodimus;

namespace {

std::string tool() { return test::binary_dir() + "/bin/rodimus"; }

// Run the tool with `arguments` (stdout and stderr into `dir`); returns the exit code.
int run(const test::temp_dir& dir, const std::string& arguments, std::string& out,
        std::string& err) {
  const std::string cmd = test::quote(tool()) + " " + arguments + " > " +
                          test::quote(dir.file("stdout")) + " 2> " +
                          test::quote(dir.file("stderr"));
  const int rc = std::system(cmd.c_str());
  out = test::slurp(dir.file("stdout"));
  err = test::slurp(dir.file("stderr"));
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

} // namespace

TEST_CASE("rodimus quantize: the saved folder gives the logits of --weights q4, bit for bit") {
  REQUIRE_MESSAGE(std::filesystem::exists(tool()), "build the tool first: " << tool());
  const std::string model = test::source_dir() + "/examples/models/tiny-coder";
  test::temp_dir dir;
  const std::string saved = dir.file("tiny-coder-q4");
  std::string out, err;
  int rc = run(
      dir, "quantize --model " + test::quote(model) + " --weights q4 --out " + test::quote(saved),
      out, err);
  INFO("stdout: " << out << "\nstderr: " << err);
  REQUIRE(rc == 0);
  CHECK(out.find("model.safetensors") != std::string::npos);
  CHECK(out.find("q4_0") != std::string::npos);
  CHECK(std::filesystem::exists(saved + "/config.json"));
  CHECK(std::filesystem::exists(saved + "/tokenizer.json"));
  // inspect: the tied head and the 8 projections of each of the 4 layers in q4_0, 3 low-rank
  // projections of each layer in q8_0 (the channel gate's up projection stays stored).
  REQUIRE(run(dir, "inspect --model " + test::quote(saved), out, err) == 0);
  CHECK(out.find("stored quantised         45 tensors (q4_0: 33, q8_0: 12)") != std::string::npos);
  CHECK(out.find("validation               ok") != std::string::npos);
  // --threads 1 quantises the rows on one thread: the same file, byte for byte.
  const std::string one = dir.file("tiny-coder-q4-one-thread");
  REQUIRE(run(dir,
              "quantize --model " + test::quote(model) + " --weights q4 --threads 1 --out " +
                  test::quote(one),
              out, err) == 0);
  CHECK(test::slurp(one + "/model.safetensors") == test::slurp(saved + "/model.safetensors"));

  const auto e = io::safetensors_file::open(model + "/expected.safetensors");
  const io::tensor_info& ids = e.at("input_ids");
  const std::string input = dir.file("input.safetensors");
  io::write_safetensors(input, {{"input_ids", dtype::i64, ids.shape, ids.bytes}});
  const auto logits = [&](const std::string& from, const std::string& weights,
                          const std::string& output) {
    return run(dir,
               "logits --model " + test::quote(from) + " --input " + test::quote(input) +
                   " --output " + test::quote(output) + " --mode split:5 --backend scalar" +
                   weights,
               out, err);
  };
  REQUIRE(logits(model, " --weights q4", dir.file("memory.safetensors")) == 0);
  REQUIRE(logits(saved, "", dir.file("saved.safetensors")) == 0);
  const auto a = io::safetensors_file::open(dir.file("memory.safetensors"));
  const auto b = io::safetensors_file::open(dir.file("saved.safetensors"));
  const io::tensor_info& la = a.at("logits");
  const io::tensor_info& lb = b.at("logits");
  REQUIRE(la.shape == lb.shape);
  REQUIRE(la.numel() > 0);
  CHECK(std::memcmp(la.bytes, lb.bytes, la.end - la.begin) == 0);

  // The same format again is accepted; another is refused.
  CHECK(logits(saved, " --weights q4", dir.file("again.safetensors")) == 0);
  rc = logits(saved, " --weights q8", dir.file("q8.safetensors"));
  CHECK(rc == 1);
  CHECK(err.find("stored quantised as q4_0") != std::string::npos);
  CHECK(err.find("gives it q8_0") != std::string::npos);
  CHECK(!std::filesystem::exists(dir.file("q8.safetensors")));
}

TEST_CASE("rodimus quantize: bad usage exits 1 with a message") {
  REQUIRE_MESSAGE(std::filesystem::exists(tool()), "build the tool first: " << tool());
  const std::string model = test::quote(test::source_dir() + "/examples/models/tiny-coder");
  test::temp_dir dir;
  const std::string saved = test::quote(dir.file("out"));
  const std::pair<std::string, std::string> cases[] = {
      {"--model " + model + " --weights q8", "missing required flag --out"},
      {"--model " + model + " --out " + saved, "missing required flag --weights"},
      {"--weights q8 --out " + saved, "missing required flag --model"},
      {"--model " + model + " --weights stored --out " + saved, "expected q8 or q4, got 'stored'"},
      {"--model " + model + " --weights q2 --out " + saved, "expected q8 or q4, got 'q2'"},
      {"--model " + model + " --weights q8 --out " + model, "folder it was loaded from"},
      {"--model " + model + " --weights q8 --threads 0 --out " + saved, "--threads"},
      {"--model " + test::quote(dir.file("none")) + " --weights q8 --out " + saved, "none"},
  };
  for (const auto& c : cases) {
    const std::string& arguments = c.first; // (not a structured binding: clang 14's INFO lambda)
    const std::string& words = c.second;
    INFO("arguments: " << arguments);
    std::string out, err;
    CHECK(run(dir, "quantize " + arguments, out, err) == 1);
    INFO("stderr: " << err);
    CHECK(err.find("rodimus quantize: error: ") == 0);
    CHECK(err.find(words) != std::string::npos);
  }
  CHECK(!std::filesystem::exists(dir.file("out")));
}
