// The `rodimus` tool against hostile or careless use (issue 15), through the binary: every case
// exits 1 with one line naming the problem (or succeeds where the input is valid), never hangs,
// and never destroys an existing output. Every command runs under `timeout 120`, so a hang shows
// as exit code 124 rather than a stuck test.
//   - flags: --help prints usage, unknown / duplicate flags, values on switches, out-of-range
//     --threads, values that start with '-', tiny and huge numbers;
//   - outputs: written all at once (a failed write keeps the old file, concurrent runs never mix),
//     standard output errors reported;
//   - FIFOs as tokenizer.json, --input or --output are refused, not waited on;
//   - an unbounded window refuses -n beyond its capacity before generating anything;
//   - inspect prints sizes beyond int64 unwrapped; the memory-placement fallback is announced;
//   - bench uses a private temporary folder and removes it.
#include "support/cli_support.hpp"
#include "support/temp_dir.hpp"
#include "support/test_support.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "rodimus/io/tokenizer.hpp"
#include "rodimus/model/weights.hpp"

using namespace rodimus;
namespace fs = std::filesystem;

namespace {

using test::quote;
using test::slurp;

std::string tool() { return test::binary_dir() + "/bin/rodimus"; }
std::string tiny_coder() { return test::source_dir() + "/examples/models/tiny-coder"; }
std::string golden(const char* name) { return test::golden_dir() + "/" + name; }

struct result {
  int rc = -1;
  std::string out, err;
};

/// Run `prefix rodimus arguments` in /bin/sh (prefix: environment, ulimit, trap ...), stdout to
/// `stdout_to` (a file of its own when empty). A hang is cut at 120 s (rc 124).
result run(const std::string& arguments, const std::string& prefix = "",
           const std::string& stdout_to = "") {
  test::temp_dir d;
  const std::string out = stdout_to.empty() ? d.file("stdout") : stdout_to;
  const std::string cmd = prefix + " timeout 120 " + quote(tool()) + " " + arguments + " > " +
                          quote(out) + " 2> " + quote(d.file("stderr"));
  const int rc = std::system(cmd.c_str());
  result r;
  r.rc = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  if (stdout_to.empty()) r.out = slurp(out);
  r.err = slurp(d.file("stderr"));
  return r;
}

/// CHECK that `r` exited 1 with one line on stderr containing every word.
void check_refused(const result& r, const std::vector<std::string>& words) {
  INFO("stderr: " << r.err);
  CHECK(r.rc == 1);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  for (const auto& w : words) {
    INFO("expected: " << w);
    CHECK(r.err.find(w) != std::string::npos);
  }
}

/// A copy of golden model `name` in `d` with config.json edited by `edit`.
template <class Edit>
std::string edited_model(const test::temp_dir& d, const char* name, Edit edit) {
  for (const char* f : {"config.json", "model.safetensors"})
    fs::copy_file(golden(name) + "/" + f, d.file(f));
  nlohmann::json c = nlohmann::json::parse(slurp(golden(name) + "/config.json"));
  edit(c);
  d.write("config.json", c.dump(2));
  return d.str();
}

/// input_ids [B, T] for `logits`.
void write_ids(const std::string& path, const std::vector<std::int64_t>& ids, std::int64_t B) {
  io::write_safetensors(path,
                        {{"input_ids", dtype::i64, {B, std::int64_t(ids.size()) / B}, ids.data()}});
}

} // namespace

TEST_CASE("flags: --help, unknown, duplicate, switch values, ranges, values starting with '-'") {
  REQUIRE_MESSAGE(fs::exists(tool()), "build the tool first: " << tool());
  const std::string tiny = " --model " + quote(golden("rodimus_tiny"));
  for (const char* cmd : {"generate", "logits", "tokenize", "inspect", "bench", "demo"}) {
    INFO(cmd);
    const result r = run(std::string(cmd) + " --help");
    CHECK(r.rc == 0);
    CHECK(r.out.rfind("usage: rodimus " + std::string(cmd), 0) == 0);
  }
  check_refused(run("logits --frobnicate"), {"unknown flag --frobnicate"});
  check_refused(run("generate" + tiny + " --prompt-ids 1 --prompt-ids 2"),
                {"--prompt-ids", "twice"});
  check_refused(run("generate" + tiny + " --prompt-ids 1 --mmap=0"), {"--mmap", "no value"});
  check_refused(run("generate" + tiny + " --prompt-ids 1 -n 2 -n 3"), {"-n", "twice"});
  for (const char* t : {"0", "-5", "1025", "100000", "2147483648", "99999999999999999999"}) {
    INFO("--threads " << t);
    check_refused(run("logits" + tiny + " --input x --output y --threads " + t),
                  {"--threads", "1024", t});
    check_refused(run("bench --threads " + std::string(t)), {"--threads", "1024"});
    check_refused(run("generate" + tiny + " --prompt-ids 1 --threads " + t), {"--threads"});
  }
  check_refused(run("generate" + tiny + " --prompt-ids 1 --temp 1e400"), {"--temp", "1e400"});
  // --matmul: two values, and only the CUDA backend has a choice to make.
  check_refused(run("generate" + tiny + " --prompt-ids 1 --matmul fast"),
                {"--matmul", "exact or rounded", "fast"});
  check_refused(run("generate" + tiny + " --prompt-ids 1 --backend cpu --matmul rounded"),
                {"--matmul rounded", "--backend cuda only"});
  check_refused(run("logits" + tiny + " --input x --output y --backend scalar --matmul rounded"),
                {"--matmul rounded", "--backend cuda only"});
  // --launch: two values, CUDA only; `overlapped` is the default and accepted anywhere.
  check_refused(run("generate" + tiny + " --prompt-ids 1 --launch eager"),
                {"--launch", "overlapped or serial", "eager"});
  check_refused(run("bench --backend cpu --launch serial"),
                {"--launch serial", "--backend cuda only"});
  check_refused(run("logits" + tiny + " --input x --output y --backend cpu --launch serial"),
                {"--launch serial", "--backend cuda only"});
  // --tuning: NAME=AxB items of two kernels, swska_decode=K or gemv=policy|registers, CUDA only
  // (the listed tiles are checked when the CUDA session opens).
  for (const char* t :
       {"swska=32", "swska=32x", "swska=x32", "swska=0x32", "gla=64x-8", "swska=32x32,", "=32x32",
        "swska:32x32", "gla=99999x8", "swska_decode=0", "swska_decode=4097", "swska_decode=-1",
        "swska_decode=", "swska_decode=8x8", "gemv=", "gemv=fast", "gemv=1x1"}) {
    INFO("--tuning " << t);
    check_refused(run("generate" + tiny + " --prompt-ids 1 --tuning " + t),
                  {"--tuning", "NAME=AxB"});
  }
  check_refused(run("bench --tuning attention=32x32"), {"--tuning", "unknown kernel", "attention"});
  check_refused(run("bench --tuning attention=foo"), {"--tuning", "unknown kernel", "attention"});
  check_refused(run("bench --tuning swska=32x32,swska=16x64"), {"--tuning", "swska", "twice"});
  check_refused(run("bench --tuning swska_decode=32,swska_decode=64"),
                {"--tuning", "swska_decode", "twice"});
  check_refused(run("bench --backend cpu --tuning swska_decode=32"),
                {"--tuning", "--backend cuda only"});
  check_refused(run("bench --backend cpu --tuning swska=32x32"),
                {"--tuning", "--backend cuda only"});
  check_refused(run("bench --tuning gemv=registers,gemv=policy"), {"--tuning", "gemv", "twice"});
  check_refused(run("bench --backend cpu --tuning gemv=registers"),
                {"--tuning", "--backend cuda only"});

  // generate --threads N (new) works and gives the same tokens.
  const std::string greedy = "generate" + tiny + " --prompt-ids 5,6,7 -n 6 --json";
  const result base = run(greedy);
  REQUIRE(base.rc == 0);
  const auto tokens = nlohmann::json::parse(base.out).at("tokens");
  const result one = run(greedy + " --threads 1");
  REQUIRE(one.rc == 0);
  CHECK(nlohmann::json::parse(one.out).at("tokens") == tokens);
  // A tiny temperature is a number (was "not a number"): sampling then picks the most likely.
  const result tiny_temp = run(greedy + " --temp 1e-320");
  INFO("stderr: " << tiny_temp.err);
  REQUIRE(tiny_temp.rc == 0);
  CHECK(nlohmann::json::parse(tiny_temp.out).at("tokens") == tokens);

  // A prompt that starts with '-' is the value of --prompt, given either way.
  const io::tokenizer tok = io::tokenizer::from_file(tiny_coder() + "/tokenizer.json");
  for (const std::string form : {"--prompt -x", "--prompt=-x", "--prompt --json"}) {
    INFO(form);
    const result r = run("generate --model " + quote(tiny_coder()) + " " + form + " -n 1 --json");
    INFO("stderr: " << r.err);
    REQUIRE(r.rc == 0);
    const std::string text = form == "--prompt --json" ? "--json" : "-x";
    const auto ids = nlohmann::json::parse(r.out).at("prompt_ids").get<std::vector<std::int32_t>>();
    CHECK(ids == tok.encode(text));
  }
}

TEST_CASE("standard output that cannot be written is an error with the system's reason") {
  const std::string args =
      "generate --model " + quote(golden("rodimus_tiny")) + " --prompt-ids 5,6,7 -n 3";
  for (const std::string& a : {args, args + " --json"}) {
    INFO(a);
    check_refused(run(a, "", "/dev/full"), {"standard output", std::strerror(ENOSPC)});
  }
  check_refused(run("inspect --model " + quote(golden("rodimus_tiny")), "", "/dev/full"),
                {"standard output", std::strerror(ENOSPC)});
}

TEST_CASE("FIFOs as tokenizer.json, --input or --output are refused, not waited on") {
  test::temp_dir d;
  const std::string fifo = d.file("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string tok = tiny_coder() + "/tokenizer.json";
  d.write("in.jsonl", std::string("{\"text\": \"hello\"}\n"));
  const std::string in = d.file("in.jsonl"), ids = d.file("ids.safetensors");
  write_ids(ids, {1, 2, 3}, 1);
  const std::string model = " --model " + quote(golden("rodimus_tiny"));
  check_refused(run("tokenize --tokenizer " + quote(fifo) + " --input " + quote(in) + " --output " +
                    quote(d.file("o.jsonl"))),
                {fifo, "not a regular file"});
  check_refused(run("tokenize --tokenizer " + quote(tok) + " --input " + quote(fifo) +
                    " --output " + quote(d.file("o.jsonl"))),
                {fifo, "not a regular file"});
  check_refused(run("tokenize --tokenizer " + quote(tok) + " --input " + quote(in) + " --output " +
                    quote(fifo)),
                {fifo, "not a regular file"});
  check_refused(run("logits" + model + " --input " + quote(fifo) + " --output " +
                    quote(d.file("o.safetensors"))),
                {fifo, "not a regular file"});
  check_refused(run("logits" + model + " --input " + quote(ids) + " --output " + quote(fifo)),
                {fifo, "not a regular file"});
  // generate reads DIR/tokenizer.json: a FIFO there is refused too.
  test::temp_dir m;
  edited_model(m, "rodimus_tiny", [](nlohmann::json&) {});
  REQUIRE(::mkfifo(m.file("tokenizer.json").c_str(), 0600) == 0);
  check_refused(run("generate --model " + quote(m.str()) + " --prompt-ids 1,2 -n 2"),
                {"tokenizer.json", "not a regular file"});
}

TEST_CASE("outputs are replaced all at once: a failed write keeps the old file") {
  test::temp_dir d;
  const std::string model = " --model " + quote(golden("rodimus_tiny"));
  write_ids(d.file("ids.safetensors"), {1, 2, 3, 4, 5, 6, 7, 8}, 2);
  std::string lines;
  for (int i = 0; i < 200; ++i)
    lines += "{\"text\": \"def fibonacci(n): return n\"}\n";
  d.write("in.jsonl", lines);
  const std::string old = "the old output\n";
  // A file size limit of 1 KiB makes the write fail part-way (EFBIG; SIGXFSZ ignored).
  const std::string small_files = "trap '' XFSZ; ulimit -f 1;";
  struct writer {
    std::string args, output;
  };
  const writer writers[] = {
      {"logits" + model + " --input " + quote(d.file("ids.safetensors")) + " --output " +
           quote(d.file("out.safetensors")),
       d.file("out.safetensors")},
      {"tokenize --tokenizer " + quote(tiny_coder() + "/tokenizer.json") + " --input " +
           quote(d.file("in.jsonl")) + " --output " + quote(d.file("out.jsonl")),
       d.file("out.jsonl")},
  };
  for (const auto& w : writers) {
    INFO(w.args);
    std::ofstream(w.output) << old;
    check_refused(run(w.args, small_files), {w.output, std::strerror(EFBIG)});
    CHECK(slurp(w.output) == old);
    // Nothing left behind but the output itself (and the inputs).
    for (const auto& e : fs::directory_iterator(d.path))
      CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
    // Without the limit the same run replaces it.
    const result ok = run(w.args);
    INFO("stderr: " << ok.err);
    CHECK(ok.rc == 0);
    CHECK(slurp(w.output) != old);
  }
}

TEST_CASE("two logits runs writing one path at the same time leave one whole output") {
  test::temp_dir d;
  const std::string model = " --model " + quote(golden("rodimus_tiny"));
  write_ids(d.file("a.safetensors"), std::vector<std::int64_t>(64, 3), 1); // 64 KiB of logits
  write_ids(d.file("b.safetensors"), {1, 2}, 1);                           // 2 KiB
  const std::string out = d.file("out.safetensors");
  const auto run_of = [&](const char* in) {
    return quote(tool()) + " logits" + model + " --input " + quote(d.file(in)) + " --output " +
           quote(out);
  };
  for (int round = 0; round < 6; ++round) {
    INFO("round " << round);
    const std::string both = run_of("a.safetensors") + " & a=$!; " + run_of("b.safetensors") +
                             " & b=$!; wait $a && wait $b";
    // Both exit 0 ...
    CHECK(std::system(("/bin/bash -c " + quote(both) + " 2> " + quote(d.file("err"))).c_str()) ==
          0);
    // ... and the file is one of the two outputs, whole.
    const io::safetensors_file f = io::safetensors_file::open(out);
    const auto shape = f.at("logits").shape;
    CHECK((shape == std::vector<std::int64_t>{1, 64, 256} ||
           shape == std::vector<std::int64_t>{1, 2, 256}));
    CHECK(f.read<float>("logits").size() == std::size_t(shape[1]) * 256);
  }
}

TEST_CASE("an unbounded window refuses -n beyond its capacity before generating anything") {
  test::temp_dir d;
  const std::string dir = edited_model(d, "rodimus_plus_tiny", [](nlohmann::json& c) {
    c["attn_cfg"].erase("window_size");
    c["max_position_embeddings"] = 20;
  });
  const std::string args = "generate --model " + quote(dir) + " --prompt-ids 1,2,3 --ignore-eos";
  // 3 prompt positions + 17 fed-back tokens = 20: -n 18 fits, -n 19 does not.
  const result too_many = run(args + " -n 19");
  check_refused(too_many, {"max_position_embeddings", "-n at most 18"});
  CHECK(too_many.out.empty()); // nothing generated (or printed) first
  check_refused(run(args + " -n 19 --json"), {"-n at most 18"});
  const result fits = run(args + " -n 18 --json");
  INFO("stderr: " << fits.err);
  REQUIRE(fits.rc == 0);
  CHECK(nlohmann::json::parse(fits.out).at("tokens").size() == 18);
}

TEST_CASE("inspect prints parameter counts and state sizes beyond int64 unwrapped") {
  test::temp_dir d;
  // d_model 2^23, 32768 layers: about 1.4e19 parameters, more than int64 holds.
  const std::string dir = edited_model(d, "rodimus_tiny", [](nlohmann::json& c) {
    c["d_model"] = 8388608;
    c["n_layer"] = 32768;
  });
  const result r = run("inspect --model " + quote(dir));
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.rc == 1); // the checkpoint does not match, after the sizes are printed
  const model_config cfg = io::load_config(dir);
  // The expected counts in 128-bit integers: the tensors of no layers plus n_layer times one.
  const auto elements = [](model_config c, std::int64_t layers) {
    c.n_layer = layers;
    __int128 n = 0;
    for (const auto& t : expected_tensors(c)) {
      __int128 k = 1;
      for (auto x : t.shape)
        k *= x;
      n += k;
    }
    return n;
  };
  const __int128 global = elements(cfg, 0);
  const __int128 params = global + __int128(cfg.n_layer) * (elements(cfg, 1) - global);
  REQUIRE(params > __int128(std::numeric_limits<std::int64_t>::max()));
  const auto digits = [](__int128 v) {
    std::string s;
    for (; v > 0; v /= 10)
      s.insert(s.begin(), char('0' + int(v % 10)));
    return s;
  };
  CHECK(r.out.find("parameters               " + digits(params) + " ") != std::string::npos);
  const __int128 E = cfg.d_inner();
  const __int128 state = __int128(cfg.n_layer) * (E * cfg.d_conv + E * cfg.mem_size) * 4 + 8;
  CHECK(r.out.find("state per sequence       " + digits(state) + " bytes") != std::string::npos);
}

TEST_CASE("weights larger than memory: the fallback to the file mapping is announced") {
  // A checkpoint larger than this machine's memory, as a sparse file (no disk used): the default
  // placement cannot copy it and reads it in place; generate says so on stderr before reading the
  // weights, whose first value is a NaN, so the load stops at once (reading tens of GB of zero
  // pages took 90 s, over two minutes under ASan).
  const double physical = physical_memory_bytes();
  REQUIRE(physical > 0);
  test::temp_dir d;
  nlohmann::json c = nlohmann::json::parse(slurp(golden("rodimus_tiny") + "/config.json"));
  c["tie_word_embeddings"] = true;
  // bf16 embeddings [V, D] larger than memory, V at most 2^23 (config.json's limit is 2^24).
  std::int64_t D = 64;
  while (physical / double(D * 2) > double(1 << 23))
    D *= 2;
  c["d_model"] = D;
  c["vocab_size"] = std::int64_t(physical / double(D * 2)) + 1024;
  d.write("config.json", c.dump());
  const model_config cfg = io::parse_config_text(c.dump(), "config.json");
  nlohmann::json header = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const auto& t : expected_tensors(cfg)) {
    std::uint64_t n = 2;
    for (auto x : t.shape)
      n *= std::uint64_t(x);
    header[t.name] = {
        {"dtype", "BF16"}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 64 != 0) // the data aligned: matrices are used in place, never copied
    h += ' ';
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i)
    bytes[std::size_t(i)] = char(std::uint64_t(h.size()) >> (8 * i));
  d.write("model.safetensors", bytes + h + std::string("\xc0\x7f", 2)); // bf16 NaN first
  fs::resize_file(d.file("model.safetensors"), 8 + h.size() + offset);

  const result r = run("generate --model " + quote(d.str()) + " --prompt-ids 99999999999 -n 1");
  INFO("stderr: " << r.err);
  CHECK(r.rc == 1);
  CHECK(r.err.find("note:") != std::string::npos);
  CHECK(r.err.find("file mapping") != std::string::npos);
  CHECK(r.err.find("non-finite") != std::string::npos);
  CHECK(r.err.find("note:") < r.err.find("non-finite")); // the note comes first
}

TEST_CASE("bench writes into a private temporary folder and removes it") {
  // The model write fails (a 1 KiB file size limit): the folder must not stay behind either.
  test::temp_dir tmp;
  const result r =
      run("bench --geometry rodimus-1.4b --layers 1 --gen 1 --prompt 1",
          "TMPDIR=" + quote(tmp.str()) + "; export TMPDIR; trap '' XFSZ; ulimit -f 1;");
  INFO("stderr: " << r.err);
  CHECK(r.rc == 1);
  CHECK(r.err.find(std::strerror(EFBIG)) != std::string::npos);
  CHECK(fs::is_empty(tmp.path));
}
