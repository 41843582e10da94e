// The `rodimus` tool end to end: `rodimus logits` once per mode on a golden model, its written
// logits compared with the reference's; bad usage exits 1 with a message. Also `inspect` and
// `generate`.
#include "support/cli_support.hpp"
#include "support/test_support.hpp"

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace rodimus;

namespace {

using test::slurp;

std::string tool() { return test::binary_dir() + "/bin/rodimus"; }

std::string temp_dir() {
  const auto p = std::filesystem::temp_directory_path() /
                 ("rodimus_cli_" + std::to_string(test::run_seed() % 1000000007ull));
  std::filesystem::create_directories(p);
  return p.string();
}

// Run the tool with `arguments`; returns the exit code, stdout and stderr in out / err.
int run(const std::string& arguments, std::string& out, std::string& err) {
  const std::string dir = temp_dir();
  const std::string cmd =
      "'" + tool() + "' " + arguments + " > '" + dir + "/stdout' 2> '" + dir + "/stderr'";
  const int rc = std::system(cmd.c_str());
  out = slurp(dir + "/stdout");
  err = slurp(dir + "/stderr");
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

} // namespace

TEST_CASE("rodimus logits: forward, decode and split modes equal the reference") {
  REQUIRE_MESSAGE(std::filesystem::exists(tool()), "build the tool first: " << tool());
  const std::string model = test::golden_dir() + "/rodimus_plus_opts";
  const auto e = test::open_golden("rodimus_plus_opts/expected.safetensors");
  const auto want = e.read<float>("logits");
  const std::string dir = temp_dir();
  const std::string input = dir + "/input.safetensors";
  const io::tensor_info& ids = e.at("input_ids");
  io::write_safetensors(input, {{"input_ids", dtype::i64, ids.shape, ids.bytes}});
  for (const char* mode : {"forward", "decode", "split:30"}) {
    INFO("mode " << mode);
    const std::string output = dir + "/logits_" + std::string(mode).substr(0, 5) + ".safetensors";
    std::string out, err;
    const int rc = run("logits --model '" + model + "' --input '" + input + "' --output '" +
                           output + "' --mode " + mode + " --backend scalar --threads 2",
                       out, err);
    INFO("stderr: " << err);
    REQUIRE(rc == 0);
    const auto f = io::safetensors_file::open(output);
    CHECK(f.at("logits").shape == std::vector<std::int64_t>{ids.shape[0], ids.shape[1], 200});
    test::check_close(f.read<float>("logits"), want, 1e-4, 1.0, mode);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("rodimus logits / generate / inspect: bad usage exits 1 with a message") {
  REQUIRE_MESSAGE(std::filesystem::exists(tool()), "build the tool first: " << tool());
  const std::string model = test::golden_dir() + "/rodimus_tiny";
  const std::string dir = temp_dir();
  const std::string input = dir + "/input.safetensors";
  std::vector<std::int64_t> bad = {1, 2, 999};
  io::write_safetensors(input, {{"input_ids", dtype::i64, {1, 3}, bad.data()}});
  // Malformed inputs: no rows, rank 3, float ids.
  const std::string empty_rows = dir + "/empty.safetensors", rank3 = dir + "/rank3.safetensors",
                    floats = dir + "/floats.safetensors";
  io::write_safetensors(empty_rows, {{"input_ids", dtype::i64, {0, 3}, nullptr}});
  io::write_safetensors(rank3, {{"input_ids", dtype::i64, {1, 1, 3}, bad.data()}});
  const std::vector<float> fl = {1.0f, 2.0f};
  io::write_safetensors(floats, {{"input_ids", dtype::f32, {1, 2}, fl.data()}});
  const std::string with_model = "logits --model '" + model + "' --input '";
  struct bad_case {
    std::string args, message;
  };
  const bad_case cases[] = {
      {with_model + empty_rows + "' --output '" + dir + "/o.safetensors'", "[0, 3]"},
      {with_model + rank3 + "' --output '" + dir + "/o.safetensors'", "[1, 1, 3]"},
      {with_model + floats + "' --output '" + dir + "/o.safetensors'", "F32"},
      {with_model + input + "' --output '" + dir + "/no/such/folder/o.safetensors'",
       "does not exist"},
      {with_model + input + "' --output '" + dir + "'", "is a directory"},
      {with_model + input + "' --output '" + dir + "/o.safetensors' --mode decode", "[0, 2]"},
      {"logits --input '" + input + "' --output '" + dir + "/o.safetensors'", "--model"},
      {"logits --model '" + model + "' --input '" + input + "' --output '" + dir +
           "/o.safetensors'",
       "999"},
      {"logits --model '" + model + "' --input '" + input + "' --output x --mode sideways",
       "--mode"},
      {"logits --model '" + model + "' --input '" + input + "' --output x --mode split:9",
       "split:9"},
      {"logits --model '" + model + "' --input '" + input + "' --output x --backend cuda", "CUDA"},
      {"logits --model '" + model + "' --input '" + input + "' --output x --frobnicate 1",
       "--frobnicate"},
      {"logits --model /nonexistent --input '" + input + "' --output x", "/nonexistent"},
      {"generate --model '" + model + "' --prompt-ids 1,x", "--prompt-ids"},
      {"generate --model '" + model + "' --prompt-ids 1 -n", "-n"},
      {"generate --model '" + model + "' --prompt-ids 1 --top-p 2", "--top-p"},
      {"inspect", "--model"},
  };
  for (const auto& c : cases) {
    INFO("rodimus " << c.args);
    std::string out, err;
    CHECK(run(c.args, out, err) == 1);
    INFO("stderr: " << err);
    CHECK(err.find(c.message) != std::string::npos);
  }
  std::string out, err;
  CHECK(run("inspect --model '" + model + "'", out, err) == 0);
  CHECK(out.find("validation               ok") != std::string::npos);
  CHECK(run("generate --model '" + model + "' --prompt-ids 5,6,7 -n 4 --json", out, err) == 0);
  CHECK(out.find("\"tokens\"") != std::string::npos);
  std::filesystem::remove_all(dir);
}
