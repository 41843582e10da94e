// Strict JSON parsing for every file format we read (safetensors headers, checkpoint indexes,
// config.json, tokenizer.json): nlohmann's parser keeps the last of duplicate keys silently and has
// no depth limit; here a duplicate key anywhere, or nesting `max_depth` deep, is an error naming
// the file.
//
// The document is built by our own SAX handler, in time linear in the text: nlohmann's parser with
// a callback (what this file used before) rescans the parent container at every object end, which
// made a header of many entries quadratic (a 3 MB safetensors header took 16-38 s). Parsing stops
// at the first container too deep, so a deeply nested file costs no memory and no recursion, and
// every message quoting the file's text is bounded in length.
#pragma once

#include <cstddef>
#include <functional>
#include <limits>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rodimus/core/error.hpp"
#include "rodimus/io/json_brief.hpp"

namespace rodimus::io::detail {

/// Called with each member of the top-level object as soon as it is parsed (see
/// for_each_json_member); it may move from the value.
using json_member_fn = std::function<void(const std::string& key, nlohmann::json& value)>;

/// nlohmann SAX handler building the document strictly (see the top of this file). With
/// `on_member` set, the top level must be an object whose members are handed over one at a time
/// and not kept, each holding at most `max_member_values` JSON values.
class strict_json_builder {
public:
  strict_json_builder(std::string where, std::string what, int max_depth, std::string top_key,
                      json_member_fn on_member = nullptr,
                      std::size_t max_member_values = std::numeric_limits<std::size_t>::max())
      : where_(std::move(where)), what_(std::move(what)), top_key_(std::move(top_key)),
        max_depth_(max_depth), on_member_(std::move(on_member)),
        max_member_values_(max_member_values) {}

  nlohmann::json& result() noexcept { return root_; }

  // ---- the nlohmann SAX interface ----
  bool null() { return put(nullptr); }
  bool boolean(bool v) { return put(v); }
  bool number_integer(nlohmann::json::number_integer_t v) { return put(v); }
  bool number_unsigned(nlohmann::json::number_unsigned_t v) { return put(v); }
  bool number_float(nlohmann::json::number_float_t v, const std::string&) { return put(v); }
  bool string(std::string& v) { return put(std::move(v)); }
  bool binary(nlohmann::json::binary_t& v) { return put(nlohmann::json::binary(std::move(v))); }
  bool start_object(std::size_t) { return open(nlohmann::json::object()); }
  bool start_array(std::size_t) { return open(nlohmann::json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(std::string& k) {
    frame& f = frames_.back();
    const bool seen = f.value ? f.value->contains(k) : !top_keys_.insert(k).second;
    if (seen)
      throw error(where_ + ": duplicate " + (frames_.size() == 1 ? top_key_ : std::string("key")) +
                  " '" + brief_text(k) + "' in the " + what_);
    f.key = std::move(k);
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception& e) {
    throw error(where_ + ": " + what_ + " is not valid JSON: " + brief_text(e.what(), 300));
  }

private:
  struct frame {
    nlohmann::json* value; // the open container; null for the streamed top-level object
    std::string key;       // the key of the member being parsed (objects)
  };

  bool streaming() const noexcept { return static_cast<bool>(on_member_); }

  /// Store `v` where the parse is (the root, an array element or an object member); returns it.
  nlohmann::json* insert(nlohmann::json&& v) {
    if (frames_.empty()) {
      if (streaming() && !v.is_object())
        throw error(where_ + ": " + what_ + " is not a JSON object");
      root_ = std::move(v);
      return &root_;
    }
    if (streaming() && ++member_values_ > max_member_values_)
      throw error(where_ + ": " + top_key_ + " '" + brief_text(frames_.front().key) +
                  "' holds more than " + std::to_string(max_member_values_) + " JSON values");
    frame& f = frames_.back();
    if (!f.value) { // a member of the streamed top-level object
      member_ = std::move(v);
      return &member_;
    }
    if (f.value->is_array()) {
      f.value->push_back(std::move(v));
      return &f.value->back();
    }
    nlohmann::json& slot = (*f.value)[f.key]; // the key is new: key() checked
    slot = std::move(v);
    return &slot;
  }

  bool put(nlohmann::json&& v) {
    insert(std::move(v));
    if (streaming() && frames_.size() == 1) hand_over();
    return true;
  }

  bool open(nlohmann::json&& container) {
    if (int(frames_.size()) >= max_depth_)
      throw error(where_ + ": " + what_ + " nests JSON deeper than " + std::to_string(max_depth_) +
                  " levels");
    nlohmann::json* at = insert(std::move(container));
    frames_.push_back({streaming() && frames_.empty() ? nullptr : at, {}});
    return true;
  }

  bool close() {
    frames_.pop_back();
    if (streaming() && frames_.size() == 1) hand_over();
    return true;
  }

  void hand_over() {
    on_member_(frames_.front().key, member_);
    member_ = nullptr;
    member_values_ = 0;
  }

  std::string where_;
  std::string what_;
  std::string top_key_;
  int max_depth_;
  json_member_fn on_member_;
  std::size_t max_member_values_;
  nlohmann::json root_;
  std::vector<frame> frames_;
  // Streaming only: the member being built, its value count, and the keys seen at the top level.
  nlohmann::json member_;
  std::size_t member_values_ = 0;
  std::unordered_set<std::string> top_keys_;
};

/// Parse JSON text strictly: a duplicate key in any object, or containers nested `max_depth` deep,
/// is an error. Errors are "<where>: <what> ..." where a duplicate at the top level is called a
/// duplicate `top_key` and deeper ones a duplicate key.
inline nlohmann::json parse_json_strict(const char* begin, const char* end,
                                        const std::string& where, const std::string& what,
                                        int max_depth, const std::string& top_key = "key") {
  strict_json_builder b(where, what, max_depth, top_key);
  nlohmann::json::sax_parse(begin, end, &b);
  return std::move(b.result());
}

/// As parse_json_strict for text whose top level must be an object ("<what> is not a JSON object"
/// otherwise), but each member goes to `on_member` as soon as it is parsed and is not kept: memory
/// stays that of one member. A member of more than `max_member_values` JSON values is an error.
inline void for_each_json_member(const char* begin, const char* end, const std::string& where,
                                 const std::string& what, int max_depth, const std::string& top_key,
                                 std::size_t max_member_values, const json_member_fn& on_member) {
  strict_json_builder b(where, what, max_depth, top_key, on_member, max_member_values);
  nlohmann::json::sax_parse(begin, end, &b);
}

} // namespace rodimus::io::detail
