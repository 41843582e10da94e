// Block-quantised matrices (q8_0 / q4_0, rodimus/primitives/quant_format.hpp) inside a standard
// safetensors file: the layout written by save_checkpoint (model/save_checkpoint.hpp) and read by
// model_weights::load (model/weights.hpp). docs/QUANT.md "Saved files" describes it for readers of
// the file; everything a reader needs is in the header:
//
//   a quantised matrix of logical shape [N, K] (any K) is one tensor under its usual checkpoint
//   name, dtype U8, shape [N, ceil(K / 32), B] with B the bytes of one block (34 for q8_0, 18 for
//   q4_0): the blocks of each row in order, each block as quant_format.hpp lays it out (the f16
//   scale little-endian first, then the 32 values); when K % 32 != 0 the last block of each row
//   holds the row's last K % 32 values and then zeros (q8_0 value 0, q4_0 nibble 8);
//   "__metadata__" holds
//     "rodimus.quant.version": "1"                         (whenever a tensor is quantised)
//     "rodimus.quant.tensor.<name>": "{\"format\":\"q8_0\",\"shape\":[N,K],\"dtype\":\"BF16\"}"
//   for each quantised tensor: its format, logical shape and the dtype it was quantised from
//   (F32, BF16 or F16). Every other tensor is stored as in any checkpoint.
//
// read_quant_entries validates that layout, each error naming the file and the tensor: a version
// other than 1 (or quantised tensors without one), an unknown "rodimus.quant.*" key, an entry that
// is not that JSON object, an unknown format, a U8 shape that does not hold exactly the blocks of
// the logical shape (ceil(K / 32) blocks per row, block bytes included), an entry naming a tensor
// the file lacks or one whose dtype is not U8, a U8 tensor no entry names, a block whose f16 scale
// is NaN or infinite, a q8_0 value of -128 (outside the format's [-127, 127]), a partial last
// block whose padding past K is not zero. A file cut short is refused before this, by
// safetensors_file (its data offsets run past the end).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rodimus/core/dtype.hpp"
#include "rodimus/core/error.hpp"
#include "rodimus/io/json_brief.hpp"
#include "rodimus/io/json_strict.hpp"
#include "rodimus/io/safetensors.hpp"
#include "rodimus/primitives/quant_format.hpp"

namespace rodimus {

/// The metadata keys of the layout (see the top of this file).
inline constexpr const char* kQuantVersionKey = "rodimus.quant.version";
inline constexpr const char* kQuantVersion = "1";
inline constexpr const char* kQuantKeyPrefix = "rodimus.quant.";
inline constexpr const char* kQuantTensorKeyPrefix = "rodimus.quant.tensor.";

/// One quantised tensor as the metadata describes it.
struct quant_tensor_entry {
  weight_format format = weight_format::stored;
  std::int64_t rows = 0; // N
  std::int64_t cols = 0; // K
  dtype source = dtype::f32;
};

/// `text` ("q8_0", "q4_0": to_string's spelling) as a block format; false for anything else.
inline bool parse_quant_format(const std::string& text, weight_format& out) {
  for (weight_format f : {weight_format::q8_0, weight_format::q4_0})
    if (text == to_string(f)) {
      out = f;
      return true;
    }
  return false;
}

/// The U8 shape holding the blocks of `e`: [N, ceil(K / 32), block bytes].
inline std::vector<std::int64_t> quant_stored_shape(const quant_tensor_entry& e) {
  return {e.rows, quant_blocks(e.cols), std::int64_t(quant_block_bytes(e.format))};
}

/// The metadata value of `e` (a JSON object as a string).
inline std::string quant_entry_text(const quant_tensor_entry& e) {
  const nlohmann::json j = {{"format", to_string(e.format)},
                            {"shape", {e.rows, e.cols}},
                            {"dtype", io::safetensors_dtype_name(e.source)}};
  return j.dump();
}

namespace detail {

/// Check every block of the quantised tensor `t` (described by `e`); throws naming it.
inline void check_quant_blocks(const io::safetensors_file& f, const io::tensor_info& t,
                               const quant_tensor_entry& e) {
  const std::size_t block = quant_block_bytes(e.format);
  const std::size_t per_row = std::size_t(quant_blocks(e.cols));
  const std::size_t n = per_row * std::size_t(e.rows);
  const int tail = int(e.cols % kQuantGroup); // values in a partial last block (0: none)
  for (std::size_t b = 0; b < n; ++b) {
    const unsigned char* p = t.bytes + b * block;
    std::uint16_t bits = 0;
    std::memcpy(&bits, p, 2); // little-endian, as the host (x86-64, aarch64) stores it
    const char* bad = nullptr;
    if (!std::isfinite(f16::to_float(bits)))
      bad = "its f16 scale is not finite (NaN or infinity)";
    else if (e.format == weight_format::q8_0)
      for (std::size_t j = 2; j < block && !bad; ++j)
        if (p[j] == 0x80) bad = "it holds the value -128 (q8_0 values are in [-127, 127])";
    if (!bad && tail != 0 && b % per_row == per_row - 1)
      for (int j = tail; j < 32 && !bad; ++j) { // the padding: q8_0 value 0, q4_0 nibble 8
        const int v = e.format == weight_format::q8_0 ? int(p[2 + j])
                      : j < 16                        ? p[2 + j] & 0x0f
                                                      : p[2 + j - 16] >> 4;
        if (v != (e.format == weight_format::q8_0 ? 0 : 8))
          bad = "its padding past K (the partial last block's values past K % 32) is not zero";
      }
    if (bad)
      throw error(f.path() + ": quantised tensor '" + t.name + "' (" + to_string(e.format) +
                  "): block " + std::to_string(b % per_row) + " of row " +
                  std::to_string(b / per_row) + " is corrupt: " + bad);
  }
}

/// The entry of tensor `name` parsed from its metadata value `text`; throws naming the tensor.
inline quant_tensor_entry parse_quant_entry(const io::safetensors_file& f, const std::string& name,
                                            const std::string& text) {
  const std::string where = f.path() + ": quantised tensor '" + io::detail::brief_text(name) + "'";
  const nlohmann::json j = io::detail::parse_json_strict(
      text.data(), text.data() + text.size(), where,
      std::string("metadata entry ") + kQuantTensorKeyPrefix + "<name>", 4);
  if (!j.is_object() || j.size() != 3 || !j.contains("format") || !j.contains("shape") ||
      !j.contains("dtype"))
    throw error(where +
                ": metadata entry must be an object with exactly \"format\", \"shape\" "
                "and \"dtype\", found " +
                io::detail::brief_json(j));
  quant_tensor_entry e;
  if (!j["format"].is_string() || !parse_quant_format(j["format"].get<std::string>(), e.format))
    throw error(where + ": unknown format " + io::detail::brief_json(j["format"]) +
                " (known: q8_0, q4_0)");
  const nlohmann::json& s = j["shape"];
  if (!s.is_array() || s.size() != 2 || !s[0].is_number_unsigned() || !s[1].is_number_unsigned() ||
      s[0].get<std::uint64_t>() > (std::uint64_t(1) << 40) ||
      s[1].get<std::uint64_t>() > (std::uint64_t(1) << 40))
    throw error(where +
                ": logical shape must be two non-negative integers [N, K] (each below "
                "2^40), found " +
                io::detail::brief_json(s));
  e.rows = s[0].get<std::int64_t>();
  e.cols = s[1].get<std::int64_t>();
  const std::string dt = j["dtype"].is_string() ? j["dtype"].get<std::string>() : "";
  if (dt == "F32")
    e.source = dtype::f32;
  else if (dt == "BF16")
    e.source = dtype::bf16;
  else if (dt == "F16")
    e.source = dtype::f16;
  else
    throw error(where +
                ": \"dtype\" (what it was quantised from) must be F32, BF16 or F16, found " +
                io::detail::brief_json(j["dtype"]));
  return e;
}

} // namespace detail

/// The quantised tensors of `f` by name, the layout and every block validated (see the top of
/// this file); empty for a file without any. Throws rodimus::error naming the file and the tensor.
inline std::map<std::string, quant_tensor_entry> read_quant_entries(const io::safetensors_file& f) {
  std::map<std::string, quant_tensor_entry> out;
  const std::string prefix = kQuantKeyPrefix, tensor_prefix = kQuantTensorKeyPrefix;
  const std::map<std::string, std::string>& meta = f.metadata();
  const auto version = meta.find(kQuantVersionKey);
  if (version != meta.end() && version->second != kQuantVersion)
    throw error(f.path() + ": quantised-weights layout version '" +
                io::detail::brief_text(version->second) + "' (metadata " + kQuantVersionKey +
                ") is not supported: this build reads version " + kQuantVersion);
  for (const auto& [key, value] : meta) {
    if (key.compare(0, prefix.size(), prefix) != 0 || key == kQuantVersionKey) continue;
    if (key.compare(0, tensor_prefix.size(), tensor_prefix) != 0)
      throw error(f.path() + ": unknown metadata key '" + io::detail::brief_text(key) +
                  "' (the rodimus.quant.* keys are " + kQuantVersionKey + " and " + tensor_prefix +
                  "<tensor name>)");
    const std::string name = key.substr(tensor_prefix.size());
    if (version == meta.end())
      throw error(f.path() + ": metadata describes quantised tensor '" +
                  io::detail::brief_text(name) + "' but has no " + kQuantVersionKey + " entry");
    const quant_tensor_entry e = detail::parse_quant_entry(f, name, value);
    const io::tensor_info* t = f.find(name);
    const std::string where =
        f.path() + ": quantised tensor '" + io::detail::brief_text(name) + "'";
    if (!t) throw error(where + " is named in the metadata but the file holds no such tensor");
    if (t->type != dtype::u8)
      throw error(where + " has dtype " + io::safetensors_dtype_name(t->type) +
                  ", expected U8 (the raw blocks)");
    const std::vector<std::int64_t> want = quant_stored_shape(e);
    if (t->shape != want) {
      std::string w = "[";
      for (std::size_t i = 0; i < want.size(); ++i)
        w += (i ? ", " : "") + std::to_string(want[i]);
      throw error(where + " has shape " + t->shape_string() + " but the " + to_string(e.format) +
                  " blocks of its logical shape [" + std::to_string(e.rows) + ", " +
                  std::to_string(e.cols) + "] need " + w +
                  "] (ceil(K / 32) = " + std::to_string(want[1]) + " blocks of " +
                  std::to_string(want[2]) + " bytes per row)");
    }
    detail::check_quant_blocks(f, *t, e);
    out.emplace(name, e);
  }
  for (const io::tensor_info& t : f.tensors())
    if (t.type == dtype::u8 && !out.count(t.name))
      throw error(f.path() + ": tensor '" + io::detail::brief_text(t.name) +
                  "' has dtype U8 but the metadata gives it no quantised format (key " +
                  tensor_prefix + io::detail::brief_text(t.name) + ")");
  return out;
}

} // namespace rodimus
