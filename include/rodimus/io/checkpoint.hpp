// A checkpoint folder in the Hugging Face layout: either `dir/model.safetensors` (one file) or
// `dir/model.safetensors.index.json` with its shards:
//
//   {"metadata": {...}, "weight_map": {"tensor name": "shard file name", ...}}
//
// The single file wins when both exist (as transformers does). Validation is strict, and every
// error names the file and the problem:
//   - the index is a JSON object (no duplicate keys anywhere) whose "weight_map" is a non-empty
//     object of string -> string; "metadata", when present, is an object;
//   - shard file names are plain names in `dir` (no '/', '\\', "..", NUL, not empty);
//   - every shard named exists and passes safetensors_file's own validation;
//   - every tensor the map names is in the shard the map names, and in no other shard;
//   - a shard holds no tensor that the map does not place in it.
// Tensors stay zero-copy views into the mapped shards, which the checkpoint owns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rodimus/core/error.hpp"
#include "rodimus/io/json_brief.hpp"
#include "rodimus/io/json_strict.hpp"
#include "rodimus/io/safetensors.hpp"
#include "rodimus/io/text_file.hpp"

namespace rodimus::io {

namespace detail {

constexpr std::uint64_t max_index_bytes = 100u * 1000u * 1000u;

/// Why `name` is not acceptable as a shard file name, or empty when it is.
inline std::string bad_shard_name(const std::string& name) {
  if (name.empty()) return "is empty";
  if (name.find('/') != std::string::npos) return "contains '/'";
  if (name.find('\\') != std::string::npos) return "contains '\\'";
  if (name.find("..") != std::string::npos) return "contains '..'";
  if (name.find('\0') != std::string::npos) return "contains a NUL character";
  if (name == ".") return "is '.'";
  return {};
}

} // namespace detail

class checkpoint {
public:
  static constexpr const char* single_file_name = "model.safetensors";
  static constexpr const char* index_file_name = "model.safetensors.index.json";

  /// Open and validate the checkpoint in folder `dir`. Throws rodimus::error naming the file.
  static checkpoint open(const std::string& dir) {
    checkpoint c;
    c.dir_ = dir;
    const std::string single = join(dir, single_file_name);
    const std::string index = join(dir, index_file_name);
    std::error_code ec;
    if (std::filesystem::exists(single, ec)) {
      c.shards_.push_back(safetensors_file::open(single));
      for (const auto& t : c.shards_[0].tensors())
        c.where_[t.name] = 0;
      return c;
    }
    if (!std::filesystem::exists(index, ec))
      throw error(dir + ": no checkpoint: neither " + single + " nor " + index + " exists");
    c.open_index(index);
    return c;
  }

  const tensor_info* find(const std::string& name) const {
    auto it = where_.find(name);
    return it == where_.end() ? nullptr : shards_[it->second].find(name);
  }
  const tensor_info& at(const std::string& name) const {
    const tensor_info* t = find(name);
    if (!t) throw error(dir_ + ": checkpoint has no tensor named '" + name + "'");
    return *t;
  }
  /// Every tensor name, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(where_.size());
    for (const auto& kv : where_)
      out.push_back(kv.first);
    return out;
  }
  std::size_t size() const noexcept { return where_.size(); }
  const std::string& dir() const noexcept { return dir_; }

  /// The file holding tensor `name` (throws like at()).
  const safetensors_file& file_of(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) throw error(dir_ + ": checkpoint has no tensor named '" + name + "'");
    return shards_[it->second];
  }
  /// The shards, in the order of their first appearance in the index (one for a single file).
  const std::vector<safetensors_file>& files() const noexcept { return shards_; }
  /// The index's "metadata" object (null for a single file or when absent).
  const nlohmann::json& index_metadata() const noexcept { return index_metadata_; }

  /// The tensor's values widened to To (float, double or int64), as safetensors_file::read.
  template <class To> std::vector<To> read(const std::string& name) const {
    return file_of(name).template read<To>(name);
  }

private:
  static std::string join(const std::string& dir, const char* file) {
    if (dir.empty()) return file;
    return dir.back() == '/' ? dir + file : dir + "/" + file;
  }

  void open_index(const std::string& index) {
    auto fail = [&](const std::string& what) { throw error(index + ": " + what); };
    const std::string text = detail::read_text_file(index, detail::max_index_bytes);
    const nlohmann::json j =
        detail::parse_json_strict(text.data(), text.data() + text.size(), index, "index", 16);
    if (!j.is_object()) fail("index is not a JSON object");
    if (j.contains("metadata") && !j["metadata"].is_object())
      fail("\"metadata\" is not a JSON object, found " + detail::brief_json(j["metadata"]));
    if (j.contains("metadata")) index_metadata_ = j["metadata"];
    if (!j.contains("weight_map")) fail("missing \"weight_map\"");
    const nlohmann::json& map = j["weight_map"];
    if (!map.is_object())
      fail("\"weight_map\" is not a JSON object, found " + detail::brief_json(map));
    if (map.empty()) fail("\"weight_map\" is empty");

    // Validate the map and open each shard once, in order of first appearance.
    std::map<std::string, std::size_t> shard_index;
    std::vector<std::string> shard_names;
    std::map<std::string, std::size_t> wanted; // tensor -> shard
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (!it.value().is_string())
        fail("weight_map entry of tensor '" + it.key() + "' is not a string, found " +
             detail::brief_json(it.value()));
      const std::string shard = it.value().get<std::string>();
      const std::string why = detail::bad_shard_name(shard);
      if (!why.empty())
        fail("shard file name " + detail::brief_json(it.value()) + " of tensor '" + it.key() +
             "' " + why + " (shards must be plain file names in the checkpoint folder)");
      auto [pos, inserted] = shard_index.emplace(shard, shard_names.size());
      if (inserted) shard_names.push_back(shard);
      wanted[it.key()] = pos->second;
    }
    for (const auto& s : shard_names) {
      const std::string path = join(dir_, s.c_str());
      std::error_code ec;
      if (!std::filesystem::exists(path, ec))
        fail("shard '" + s + "' named in weight_map does not exist (" + path + ")");
      shards_.push_back(safetensors_file::open(path));
    }

    // Every named tensor is in its shard; every shard tensor is named, and in that shard.
    for (const auto& [name, si] : wanted) {
      if (!shards_[si].find(name)) {
        std::string also;
        for (std::size_t k = 0; k < shards_.size(); ++k)
          if (k != si && shards_[k].find(name)) also = " (it is in shard '" + shard_names[k] + "')";
        fail("tensor '" + name + "' is not in shard '" + shard_names[si] +
             "' where weight_map places it" + also);
      }
    }
    for (std::size_t k = 0; k < shards_.size(); ++k)
      for (const auto& t : shards_[k].tensors()) {
        auto it = wanted.find(t.name);
        if (it == wanted.end())
          fail("shard '" + shard_names[k] + "' holds tensor '" + t.name +
               "' that weight_map does not name");
        if (it->second != k)
          fail("tensor '" + t.name + "' appears in shard '" + shard_names[k] +
               "' but weight_map places it in shard '" + shard_names[it->second] +
               "' (duplicate tensor across shards)");
      }
    where_ = std::move(wanted);
  }

  std::string dir_;
  std::vector<safetensors_file> shards_;
  std::map<std::string, std::size_t> where_; // tensor name -> shard
  nlohmann::json index_metadata_;
};

} // namespace rodimus::io
