// rodimus logits --model DIR --input IN.safetensors --output OUT.safetensors
//                [--mode forward|decode|split:P] [--backend scalar|cpu|cuda] [--threads N]
//                [--mmap]
//
// Reads `input_ids` [B, T] (int64; int32 accepted; B, T >= 1) and writes `logits` [B, T, V] (f32):
//   forward  one prefill of all T tokens
//   decode   every token through the decode step, from an empty state
//   split:P  prefill of the first P tokens, then decode steps for the rest (0 <= P <= T)
// Computed in f32 whatever the weights' dtype. --backend scalar is the reference (default); cpu the
// SIMD backend on --threads N threads (default 1); cuda is not available for the model yet.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "cli.hpp"
#include "rodimus/backend/cpu/all.hpp"
#include "rodimus/io/safetensors.hpp"
#include "rodimus/model/runner.hpp"

namespace rodimus::cli {

namespace {

index_t parse_mode(const std::string& mode, index_t T) {
  if (mode == "forward") return T;
  if (mode == "decode") return 0;
  if (mode.rfind("split:", 0) == 0) {
    const std::optional<long long> p = parse_integer(mode.substr(6));
    if (!p) throw error("--mode split:P expects an integer P, got '" + mode + "'");
    const long long v = *p;
    if (v < 0 || v > T)
      throw error("--mode " + mode + ": P must be in [0, " + std::to_string(T) +
                  "] (the input has T = " + std::to_string(T) + " tokens per row)");
    return index_t(v);
  }
  throw error("--mode must be forward, decode or split:P, got '" + mode + "'");
}

/// The token ids (B, T) of `input_ids` in `path`: rank 2, integer, B and T at least 1.
std::vector<std::int64_t> read_input_ids(const std::string& path, index_t& B, index_t& T) {
  const io::safetensors_file in = io::safetensors_file::open(path);
  const io::tensor_info* t = in.find("input_ids");
  if (!t) throw error(path + ": no tensor named 'input_ids'");
  if (t->type != dtype::i64 && t->type != dtype::i32)
    throw error(path + ": 'input_ids' has dtype " + io::safetensors_dtype_name(t->type) +
                ", expected I64 (or I32)");
  if (t->shape.size() != 2 || t->shape[0] < 1 || t->shape[1] < 1)
    throw error(path + ": 'input_ids' has shape " + t->shape_string() +
                ", expected [B, T] with B >= 1 and T >= 1");
  B = t->shape[0];
  T = t->shape[1];
  return in.read<std::int64_t>("input_ids");
}

/// Fail before any work when `path` cannot be an output file (a folder, or in a missing folder).
void check_output_path(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw error(path + ": cannot write the output there: it is a directory");
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec))
    throw error(path + ": cannot write the output there: folder " + parent.string() +
                " does not exist");
}

} // namespace

int run_logits(int argc, char** argv) {
  const args a(argc, argv, {"mmap"});
  a.allow_only({"model", "input", "output", "mode", "backend", "threads", "mmap"});
  const std::string model_dir = a.require("model");
  const std::string input = a.require("input");
  const std::string output = a.require("output");
  const std::string backend = a.get("backend", "scalar");
  if (backend != "scalar" && backend != "cpu" && backend != "cuda")
    throw error("--backend must be scalar, cpu or cuda, got '" + backend + "'");
  const long long threads = a.get_int("threads", 1);
  if (threads < 1) throw error("--threads must be >= 1, got " + std::to_string(threads));
  if (backend == "cuda")
    throw error("--backend cuda: the CUDA model path is not available yet (use scalar or cpu)");

  check_output_path(output);
  index_t B = 0, T = 0;
  const std::vector<std::int64_t> ids = read_input_ids(input, B, T);
  const index_t prefix = parse_mode(a.get("mode", "forward"), T);

  const model_weights weights = model_weights::load(model_dir, placement_flag(a));
  std::vector<float> logits;
  if (backend == "scalar") {
    model_runner<scalar> runner(weights);
    logits = sequence_logits(runner, ids, B, T, prefix);
  } else {
    thread_pool pool{int(threads)};
    model_runner<cpu<>> runner(weights, cpu<>{&pool});
    logits = sequence_logits(runner, ids, B, T, prefix);
  }
  io::write_safetensors(
      output, {{"logits", dtype::f32, {B, T, weights.config().vocab_size}, logits.data()}});
  return 0;
}

} // namespace rodimus::cli
