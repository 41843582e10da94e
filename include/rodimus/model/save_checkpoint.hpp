// Saving loaded weights as a checkpoint folder that model_weights::load reads directly: what
// `rodimus quantize` does (docs/QUANT.md "Saved files").
//
//   auto w = model_weights::load(dir, weight_placement::mapped, {}, quant_policy::parse("q4"));
//   save_checkpoint(w, out_dir);
//
// out_dir (created when missing) gets model.safetensors with every tensor the model uses, in the
// order expected_tensors lists them: each matrix the weights hold block-quantised as U8 blocks
// with its "rodimus.quant.*" metadata (model/quant_file.hpp; rows held in the decode layout are
// unpacked to blocks again, one matrix at a time), and for a tied model whose head is
// quantised, that head as `lm_head.weight`; every other tensor byte for byte as the checkpoint
// stores it (a stored duplicate of a tied head is left out). Beside it, config.json and the
// tokenizer files the source folder has (tokenizer.json, tokenizer_config.json,
// special_tokens_map.json, generation_config.json) are copied unchanged. Each file is written
// atomically (io/atomic_file.hpp): a failed save leaves every file of out_dir whole, either as it
// was or as written; model.safetensors is written last. out_dir must not be the source folder
// (the save would replace the weights it reads).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include "rodimus/core/error.hpp"
#include "rodimus/io/atomic_file.hpp"
#include "rodimus/io/read_file.hpp"
#include "rodimus/io/safetensors.hpp"
#include "rodimus/model/quant_file.hpp"
#include "rodimus/model/weights.hpp"

namespace rodimus {

/// The files besides the weights that save_checkpoint copies when the source folder has them
/// (config.json must be there: the weights were loaded with it).
inline const std::vector<std::string>& checkpoint_side_files() {
  static const std::vector<std::string> files = {"config.json", "tokenizer.json",
                                                 "tokenizer_config.json", "special_tokens_map.json",
                                                 "generation_config.json"};
  return files;
}

/// The tensors and metadata of `w` as save_checkpoint writes them (the bytes stay `w`'s: a
/// quantised matrix's in its in-memory layout, weight_matrix::layout, which save_checkpoint turns
/// back into blocks as it writes them).
inline std::vector<io::tensor_to_write>
checkpoint_tensors(const model_weights& w, std::map<std::string, std::string>& metadata) {
  std::vector<io::tensor_to_write> out;
  const auto add = [&](const std::string& name) {
    if (const weight_matrix* m = w.quantised_matrix_of(name)) {
      const quant_tensor_entry e{m->format, m->rows, m->cols, m->type};
      out.push_back({name, dtype::u8, quant_stored_shape(e), m->data});
      metadata[kQuantTensorKeyPrefix + name] = quant_entry_text(e);
      return;
    }
    const io::tensor_info& t = w.checkpoint().at(name);
    out.push_back({name, t.type, t.shape, t.bytes});
  };
  for (const expected_tensor& e : expected_tensors(w.config()))
    add(e.name);
  if (w.config().tie_word_embeddings && w.quantised_matrix_of("lm_head.weight"))
    add("lm_head.weight");
  if (w.quantised()) metadata[kQuantVersionKey] = kQuantVersion;
  return out;
}

/// Save `w` into the folder `out_dir` (see the top of this file). Throws rodimus::error naming the
/// file or folder that cannot be written.
inline void save_checkpoint(const model_weights& w, const std::string& out_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(out_dir, ec) && !fs::is_directory(out_dir, ec))
    throw error(out_dir + ": cannot save the checkpoint there: it is not a folder");
  if (fs::exists(out_dir, ec) && fs::equivalent(out_dir, w.dir(), ec))
    throw error(out_dir + ": cannot save the checkpoint into the folder it was loaded from (" +
                w.dir() + "): that would replace the weights being read; choose another folder");
  fs::create_directories(out_dir, ec);
  if (ec) throw error(out_dir + ": cannot create the checkpoint folder: " + ec.message());
  const fs::path src = w.dir(), dst = out_dir;
  for (const std::string& name : checkpoint_side_files()) {
    if (name != "config.json" && !fs::exists(src / name, ec)) continue;
    const std::string bytes = io::read_regular_file((src / name).string());
    io::write_file_atomically((dst / name).string(), bytes.data(), bytes.size());
  }
  std::map<std::string, std::string> metadata;
  const std::vector<io::tensor_to_write> tensors = checkpoint_tensors(w, metadata);
  io::safetensors_writer f((dst / io::checkpoint::single_file_name).string(), tensors, metadata);
  std::vector<unsigned char> blocks; // one quantised matrix's rows unpacked at a time
  for (const io::tensor_to_write& t : tensors) {
    const std::size_t n = io::detail::tensor_bytes(t);
    const weight_matrix* m = w.quantised_matrix_of(t.name);
    if (!m || m->layout == quant_layout::blocks) {
      f.write_next(t.bytes, n);
      continue;
    }
    blocks.resize(n);
    repack_quant_rows(m->data, blocks.data(), m->format, m->rows, quant_blocks(m->cols), m->layout,
                      quant_layout::blocks);
    f.write_next(blocks.data(), n);
  }
  f.commit();
}

} // namespace rodimus
