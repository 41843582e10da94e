// Strict JSON parsing for every file format we read (safetensors headers, checkpoint indexes,
// config.json): nlohmann's parser keeps the last of duplicate keys silently and has no depth limit;
// here a duplicate key anywhere, or nesting `max_depth` deep, is an error naming the file.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rodimus/core/error.hpp"

namespace rodimus::io::detail {

/// Parse JSON text strictly: a duplicate key in any object, or containers nested `max_depth` deep,
/// is an error. Errors are "<where>: <what> ..." where a duplicate at the top level is called a
/// duplicate `top_key` and deeper ones a duplicate key.
inline nlohmann::json parse_json_strict(const char* begin, const char* end,
                                        const std::string& where, const std::string& what,
                                        int max_depth, const std::string& top_key = "key") {
  std::vector<std::set<std::string>> keys; // one set per open object or array
  std::string duplicate;
  bool duplicate_at_top = false;
  bool too_deep = false;
  nlohmann::json out;
  try {
    out = nlohmann::json::parse(
        begin, end, [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
          using ev_t = nlohmann::json::parse_event_t;
          switch (ev) {
          case ev_t::object_start:
          case ev_t::array_start:
            keys.emplace_back();
            if (depth >= max_depth) too_deep = true;
            break;
          case ev_t::object_end:
          case ev_t::array_end:
            if (!keys.empty()) keys.pop_back();
            break;
          case ev_t::key:
            if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second &&
                duplicate.empty()) {
              duplicate = parsed.get<std::string>();
              duplicate_at_top = keys.size() == 1;
            }
            break;
          case ev_t::value: break;
          }
          return !too_deep; // drop everything once too deep, so memory stays bounded
        });
  } catch (const nlohmann::json::exception& e) {
    throw error(where + ": " + what + " is not valid JSON: " + e.what());
  }
  if (too_deep)
    throw error(where + ": " + what + " nests JSON deeper than " + std::to_string(max_depth) +
                " levels");
  if (!duplicate.empty())
    throw error(where + ": duplicate " + (duplicate_at_top ? top_key : std::string("key")) + " '" +
                duplicate + "' in the " + what);
  return out;
}

} // namespace rodimus::io::detail
