// A short rendering of a JSON value (or of text taken from a file) for error messages: bounded in
// length however large or deeply nested the value is, so a hostile file cannot make a message of
// hundreds of megabytes, or overflow the stack while rendering one (nlohmann's dump() is recursive
// and renders everything).
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace rodimus::io::detail {

/// `s` cut to at most `max_chars` bytes (ending in "..." when cut, never inside a UTF-8 sequence).
inline std::string brief_text(const std::string& s, std::size_t max_chars = 200) {
  if (s.size() <= max_chars) return s;
  std::size_t cut = max_chars > 3 ? max_chars - 3 : 0;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80)
    --cut; // do not split a multi-byte character
  return s.substr(0, cut) + "...";
}

namespace json_brief_impl {

/// Append a rendering of `j` to `out`, stopping once `out` holds more than `limit` bytes;
/// containers deeper than `depth_left` render as [...] / {...}.
inline void render(const nlohmann::json& j, std::string& out, std::size_t limit, int depth_left) {
  if (out.size() > limit) return;
  if (j.is_array() || j.is_object()) {
    const bool obj = j.is_object();
    if (depth_left <= 0 && !j.empty()) {
      out += obj ? "{...}" : "[...]";
      return;
    }
    out += obj ? '{' : '[';
    bool first = true;
    for (auto it = j.begin(); it != j.end() && out.size() <= limit; ++it) {
      if (!first) out += ',';
      first = false;
      if (obj) {
        render(nlohmann::json(brief_text(it.key(), limit)), out, limit, 0);
        out += ':';
      }
      render(it.value(), out, limit, depth_left - 1);
    }
    out += obj ? '}' : ']';
    return;
  }
  if (j.is_string()) { // render only a bounded prefix of a long string
    const auto& s = j.get_ref<const std::string&>();
    const nlohmann::json part(s.size() > limit ? s.substr(0, limit + 1) : s);
    out += part.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
    return;
  }
  out += j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace); // a scalar
}

} // namespace json_brief_impl

/// A short, bounded rendering of a JSON value for error messages (at most `max_chars` bytes).
inline std::string brief_json(const nlohmann::json& j, std::size_t max_chars = 80) {
  std::string s;
  json_brief_impl::render(j, s, max_chars, 4);
  return brief_text(s, max_chars);
}

} // namespace rodimus::io::detail
