// rodimus logits --model DIR --input IN.safetensors --output OUT.safetensors
//                [--mode forward|decode|split:P] [--backend scalar|cpu|cuda] [--threads N]
//                [--weights stored|q8|q4] [--mmap]
//
// --weights q8|q4: the big projections and the head block-quantised at load, the low-rank
// projections in q8_0 but the channel gate's up projection (docs/QUANT.md), on --threads threads
// (default: one per hardware thread).
//
// Reads `input_ids` [B, T] (int64; int32 accepted; B, T >= 1) and writes `logits` [B, T, V] (f32):
//   forward  one prefill of all T tokens
//   decode   every token through the decode step, from an empty state
//   split:P  prefill of the first P tokens, then decode steps for the rest (0 <= P <= T)
// Computed in f32 whatever the weights' dtype. --backend scalar is the reference (default); cpu the
// SIMD backend on --threads N threads (1 to 1024, default 1); cuda the GPU (examples/rodimus/
// backend_cuda.cu, built where nvcc is present). The output is replaced all at once (written beside
// it, then renamed): a failed run leaves an existing file as it was; --input and --output must be
// regular files.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "backend_select.hpp"
#include "cli.hpp"
#include "rodimus/io/atomic_file.hpp"
#include "rodimus/io/safetensors.hpp"
#include "rodimus/runtime/runner.hpp"

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

} // namespace

int run_logits(int argc, char** argv) {
  const args a(argc, argv,
               {"model", "input", "output", "mode", "backend", "threads", "matmul", "launch",
                "weights", "tuning"},
               {"mmap"});
  const std::string model_dir = a.require("model");
  const std::string input = a.require("input");
  const std::string output = a.require("output");
  const backend_options backend = backend_flags(a, "scalar", 1);

  check_output_path(output);
  index_t B = 0, T = 0;
  const std::vector<std::int64_t> ids = read_input_ids(input, B, T);
  const index_t prefix = parse_mode(a.get("mode", "forward"), T);

  const model_weights weights = load_weights(model_dir, a);
  const backend_session session = open_session(weights, backend, 1);
  const std::vector<float> logits = session->sequence_logits(ids, B, T, prefix);
  // All at once: a failed write leaves an existing output as it was.
  const std::vector<unsigned char> bytes = io::to_safetensors_bytes(
      {{"logits", dtype::f32, {B, T, weights.config().vocab_size}, logits.data()}});
  io::write_file_atomically(output, bytes.data(), bytes.size());
  return 0;
}

} // namespace rodimus::cli
