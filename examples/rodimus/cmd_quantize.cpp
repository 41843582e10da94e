// rodimus quantize --model DIR --weights q8|q4 --out OUTDIR [--threads N] [--mmap]
//
// Loads the checkpoint in DIR quantised as --weights asks (the presets of model/quant_policy.hpp:
// the projections and the head in q8_0 / q4_0, the low-rank projections in q8_0 but the channel
// gate's up projection, which stays stored) on --threads threads (default: one per hardware
// thread; the blocks do not depend on it) and saves it into OUTDIR as a checkpoint that
// `generate`, `logits` and `bench` load directly, without --weights (the blocks are used as
// stored; docs/QUANT.md "Saved files" has the layout): model.safetensors, config.json and the
// tokenizer files DIR has. Each file is replaced all at once; OUTDIR is
// created when missing and must not be DIR. Prints what it wrote: the tensors by format and the
// file's size.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <system_error>

#include "cli.hpp"
#include "rodimus/model/save_checkpoint.hpp"

namespace rodimus::cli {

int run_quantize(int argc, char** argv) {
  const args a(argc, argv, {"model", "weights", "out", "threads"}, {"mmap"});
  const std::string dir = a.require("model");
  const std::string weights = a.require("weights");
  const std::string out = a.require("out");
  if (weights != "q8" && weights != "q4")
    throw error("--weights: expected q8 or q4, got '" + weights + "'");
  const model_weights w = load_weights(dir, a);
  save_checkpoint(w, out);
  std::map<std::string, int> formats;
  for (const expected_tensor& e : expected_tensors(w.config())) {
    const weight_matrix* m = w.quantised_matrix_of(e.name);
    ++formats[m ? to_string(m->format) : "stored"];
  }
  if (w.config().tie_word_embeddings && w.quantised_matrix_of("lm_head.weight"))
    ++formats[to_string(w.quantised_matrix_of("lm_head.weight")->format)];
  std::error_code ec;
  const std::string file = (std::filesystem::path(out) / io::checkpoint::single_file_name).string();
  const auto bytes = std::filesystem::file_size(file, ec);
  std::printf("wrote %s (%.2f MB):", file.c_str(), ec ? 0.0 : double(bytes) / 1e6);
  for (const auto& [format, count] : formats)
    std::printf(" %d %s", count, format.c_str());
  std::printf(" tensors\n");
  return 0;
}

} // namespace rodimus::cli
