// The pre-tokenizer of a tokenizer.json byte-level BPE tokenizer (io/tokenizer.hpp): the text
// between added tokens is cut into words before BPE. Steps, applied in order to every piece:
//   Split      a regex (Oniguruma, io/onig_regex.hpp) or a literal; the pieces are cut per the
//              delimiter behaviour (Removed, Isolated, MergedWithPrevious, MergedWithNext,
//              Contiguous), optionally inverted;
//   ByteLevel  (last) prepend ' ' when add_prefix_space and the piece does not start with one, and
//              with use_regex split by the GPT-2 pattern (detail::gpt2_split: no regex engine,
//              Oniguruma's Unicode classes, tested equal to the Oniguruma regex).
#pragma once

#include <oniguruma.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rodimus/core/error.hpp"
#include "rodimus/io/json_brief.hpp"
#include "rodimus/io/json_fields.hpp"
#include "rodimus/io/onig_regex.hpp"
#include "rodimus/io/utf8.hpp"

namespace rodimus::io {

namespace detail {

enum class split_behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

struct split_step {
  bool is_byte_level = false;
  // Split
  bool literal = false;
  std::string pattern; // literal text or regex source
  onig_regex regex;
  split_behavior behavior = split_behavior::isolated;
  bool invert = false;
  // ByteLevel
  bool add_prefix_space = false;
  bool use_regex = true;
};

struct span {
  std::size_t begin, end;
  bool is_match;
};

/// Cut s into pieces per the delimiter behaviour, given the matches of the pattern.
inline void apply_behavior(std::vector<span>& parts, split_behavior behavior, bool invert) {
  if (invert)
    for (auto& p : parts)
      p.is_match = !p.is_match;
  std::vector<span> out;
  out.reserve(parts.size());
  bool previous_match = false;
  switch (behavior) {
  case split_behavior::isolated: return;
  case split_behavior::removed:
    for (auto& p : parts)
      if (!p.is_match) out.push_back(p);
    break;
  case split_behavior::merged_with_previous:
    for (auto& p : parts) {
      if (p.is_match && !previous_match && !out.empty()) {
        out.back().end = p.end;
      } else {
        out.push_back(p);
      }
      previous_match = p.is_match;
    }
    break;
  case split_behavior::merged_with_next:
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      if (it->is_match && !previous_match && !out.empty()) {
        out.back().begin = it->begin;
      } else {
        out.push_back(*it);
      }
      previous_match = it->is_match;
    }
    std::reverse(out.begin(), out.end());
    break;
  case split_behavior::contiguous:
    for (auto& p : parts) {
      if (p.is_match == previous_match && !out.empty()) {
        out.back().end = p.end;
      } else {
        out.push_back(p);
      }
      previous_match = p.is_match;
    }
    break;
  }
  parts.swap(out);
}

inline const std::string& gpt2_pattern() {
  static const std::string p =
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  return p;
}

// The character classes of the GPT-2 pattern, from Oniguruma's own Unicode tables (so they are
// exactly the classes the regex uses): \s, \p{L}, \p{N}, and the rest.
enum class char_class : std::uint8_t { space, letter, number, other };

inline char_class classify_slow(char32_t cp) {
  static const OnigCtype letter = [] {
    onig_init_once();
    OnigUChar name[] = "L";
    return OnigCtype(ONIGENC_PROPERTY_NAME_TO_CTYPE(ONIG_ENCODING_UTF8, name, name + 1));
  }();
  static const OnigCtype number = [] {
    OnigUChar name[] = "N";
    return OnigCtype(ONIGENC_PROPERTY_NAME_TO_CTYPE(ONIG_ENCODING_UTF8, name, name + 1));
  }();
  if (is_unicode_space(cp)) return char_class::space;
  if (ONIGENC_IS_CODE_CTYPE(ONIG_ENCODING_UTF8, OnigCodePoint(cp), letter))
    return char_class::letter;
  if (ONIGENC_IS_CODE_CTYPE(ONIG_ENCODING_UTF8, OnigCodePoint(cp), number))
    return char_class::number;
  return char_class::other;
}

inline char_class classify(char32_t cp) {
  static const std::vector<char_class> bmp = [] {
    std::vector<char_class> t(0x10000);
    for (char32_t c = 0; c < 0x10000; ++c)
      t[c] = classify_slow(c);
    return t;
  }();
  return cp < 0x10000 ? bmp[cp] : classify_slow(cp);
}

/// The GPT-2 pattern without a regex engine: calls f(begin, end) for each match in s (valid UTF-8),
/// left to right; the matches tile s. Equal to onig_regex(gpt2_pattern()).for_each_match (tested):
///   at '\'' followed by s|t|re|ve|m|ll|d          the contraction;
///   an optional ' ' then a run of one class          letters, numbers or others (not \s);
///   a whitespace run that is followed by the end   the run;
///   a whitespace run followed by a non-space       the run less its last character, if not empty;
///   else                                           the run (one character here).
template <class F> void gpt2_split(std::string_view s, F&& f) {
  const std::size_t n = s.size();
  auto class_at = [&](std::size_t pos, std::size_t& len) {
    const auto b = static_cast<unsigned char>(s[pos]);
    if (b < 0x80) {
      len = 1;
      return classify(b);
    }
    const utf8::unit u = utf8::next_unit(s, pos);
    len = u.length;
    return classify(u.code_point);
  };
  std::size_t pos = 0;
  while (pos < n) {
    // 's 't 're 've 'm 'll 'd
    if (s[pos] == '\'' && pos + 1 < n) {
      const char c = s[pos + 1];
      std::size_t len = 0;
      if (c == 's' || c == 't' || c == 'm' || c == 'd')
        len = 2;
      else if (pos + 2 < n && ((c == 'r' && s[pos + 2] == 'e') || (c == 'v' && s[pos + 2] == 'e') ||
                               (c == 'l' && s[pos + 2] == 'l')))
        len = 3;
      if (len) {
        f(pos, pos + len);
        pos += len;
        continue;
      }
    }
    std::size_t len = 0;
    char_class cls = class_at(pos, len);
    std::size_t start = pos;
    std::size_t run_from = pos;
    if (s[pos] == ' ' && pos + 1 < n) {
      std::size_t len2 = 0;
      const char_class next = class_at(pos + 1, len2);
      if (next != char_class::space) { // ' ' glued to the run that follows
        cls = next;
        run_from = pos + 1;
        len = len2;
      }
    }
    std::size_t end = run_from + len;
    if (cls != char_class::space) {
      while (end < n) {
        std::size_t l = 0;
        if (class_at(end, l) != cls) break;
        end += l;
      }
      f(start, end);
      pos = end;
      continue;
    }
    // Whitespace run [pos, end).
    std::size_t last = pos; // start of the run's last character
    while (end < n) {
      std::size_t l = 0;
      if (class_at(end, l) != char_class::space) break;
      last = end;
      end += l;
    }
    if (end < n && last > pos) end = last; // leave the last space to the word that follows
    f(pos, end);
    pos = end;
  }
}

} // namespace detail

/// The pre-tokenizer steps of one tokenizer.json (see the top of this file).
class pre_tokenizer {
public:
  /// Read tokenizer.json's "pre_tokenizer" (not null) at JSON path `path`; a Sequence's steps are
  /// appended in order. Errors (rodimus::error) name the JSON path.
  void load(const nlohmann::json& p, const std::string& path) {
    const std::string type = detail::component_type(p, path);
    if (type == "Sequence") {
      const nlohmann::json& list = detail::member(p, "pretokenizers", path);
      if (!list.is_array())
        throw error(path + ".pretokenizers: expected an array, found " + detail::type_name(list));
      for (std::size_t i = 0; i < list.size(); ++i) {
        const std::string at = path + ".pretokenizers[" + std::to_string(i) + "]";
        const std::string t = detail::component_type(list[i], at);
        if (t == "Sequence") detail::unsupported(at, t, "Split, ByteLevel");
        load(list[i], at);
      }
      return;
    }
    if (!steps_.empty() && steps_.back().is_byte_level) {
      throw error(path + ": a " + type +
                  " step after ByteLevel is not supported (ByteLevel must come last)");
    }
    detail::split_step s;
    if (type == "ByteLevel") {
      s.is_byte_level = true;
      s.add_prefix_space = detail::get_bool(p, "add_prefix_space", true, path);
      s.use_regex =
          detail::get_bool(p, "use_regex", true, path); // the GPT-2 pattern: detail::gpt2_split
    } else if (type == "Split") {
      const nlohmann::json& pat = detail::member(p, "pattern", path);
      detail::expect_object(pat, path + ".pattern");
      if (auto it = pat.find("Regex"); it != pat.end()) {
        s.pattern = detail::get_string(*it, path + ".pattern.Regex");
        s.regex = detail::onig_regex(s.pattern, path + ".pattern.Regex");
      } else if (auto it2 = pat.find("String"); it2 != pat.end()) {
        s.literal = true;
        s.pattern = detail::get_string(*it2, path + ".pattern.String");
      } else {
        throw error(path + ".pattern: expected {\"Regex\": ...} or {\"String\": ...}, found " +
                    detail::brief_json(pat));
      }
      const std::string b =
          detail::get_string(detail::member(p, "behavior", path), path + ".behavior");
      if (b == "Removed")
        s.behavior = detail::split_behavior::removed;
      else if (b == "Isolated")
        s.behavior = detail::split_behavior::isolated;
      else if (b == "MergedWithPrevious")
        s.behavior = detail::split_behavior::merged_with_previous;
      else if (b == "MergedWithNext")
        s.behavior = detail::split_behavior::merged_with_next;
      else if (b == "Contiguous")
        s.behavior = detail::split_behavior::contiguous;
      else
        throw error(path + ".behavior: '" + b +
                    "' is not a Split behaviour (Removed, Isolated, MergedWithPrevious, "
                    "MergedWithNext, Contiguous)");
      s.invert = detail::get_bool(p, "invert", false, path);
    } else {
      detail::unsupported(path, type,
                          "null, ByteLevel, Split, Sequence of Split steps ending with ByteLevel");
    }
    byte_level_ |= s.is_byte_level;
    steps_.push_back(std::move(s));
  }

  /// Append the words of one piece of text (no added tokens in it) to `words`, in order: views of
  /// `text`, or of strings kept in `arena` (a piece given a prefix space).
  void split(std::string_view text, std::deque<std::string>& arena,
             std::vector<std::string_view>& words) const {
    if (text.empty()) return;
    std::vector<std::string_view> pieces{text};
    std::vector<std::string_view> next;
    std::vector<detail::span> parts;
    for (const detail::split_step& step : steps_) {
      next.clear();
      for (std::string_view piece : pieces) {
        if (step.is_byte_level && step.add_prefix_space && piece.front() != ' ') {
          arena.push_back(" " + std::string(piece));
          piece = arena.back();
        }
        if (step.is_byte_level && !step.use_regex) {
          next.push_back(piece);
          continue;
        }
        if (step.is_byte_level) { // the GPT-2 pattern: its matches tile the piece
          detail::gpt2_split(
              piece, [&](std::size_t b, std::size_t e) { next.push_back(piece.substr(b, e - b)); });
          continue;
        }
        parts.clear();
        std::size_t prev = 0;
        auto on_match = [&](std::size_t b, std::size_t e) {
          if (prev < b) parts.push_back({prev, b, false});
          parts.push_back({b, e, true});
          prev = e;
        };
        if (step.literal) {
          if (!step.pattern.empty()) {
            for (std::size_t at = piece.find(step.pattern); at != std::string_view::npos;
                 at = piece.find(step.pattern, at + step.pattern.size())) {
              on_match(at, at + step.pattern.size());
            }
          }
        } else {
          step.regex.for_each_match(piece, on_match);
        }
        if (prev < piece.size()) parts.push_back({prev, piece.size(), false});
        detail::apply_behavior(parts, step.behavior, step.invert);
        for (const auto& p : parts)
          if (p.end > p.begin) next.push_back(piece.substr(p.begin, p.end - p.begin));
      }
      pieces.swap(next);
    }
    words.insert(words.end(), pieces.begin(), pieces.end());
  }

  /// Whether a ByteLevel step is present (words then go through the byte-level alphabet).
  bool byte_level() const noexcept { return byte_level_; }

private:
  std::vector<detail::split_step> steps_;
  bool byte_level_ = false;
};

} // namespace rodimus::io
