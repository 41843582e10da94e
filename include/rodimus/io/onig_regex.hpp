// The regex engine of the tokenizer: a compiled Oniguruma regex (the engine and syntax Hugging Face
// tokenizers use: \p{..} classes, lookahead) and Oniguruma's Unicode classes (\s, \w). Link
// rodimus::text, which adds Oniguruma.
#pragma once

#include <oniguruma.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "rodimus/core/error.hpp"
#include "rodimus/io/json_brief.hpp"
#include "rodimus/io/utf8.hpp"

namespace rodimus::io::detail {

/// Oniguruma's own description of error code `rc` ("retry-limit-in-match over", ...).
inline std::string onig_message(int rc, OnigErrorInfo* info = nullptr) {
  OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN] = {};
  if (info)
    onig_error_code_to_str(msg, rc, info);
  else
    onig_error_code_to_str(msg, rc);
  return reinterpret_cast<const char*>(msg) + std::string(" (Oniguruma error ") +
         std::to_string(rc) + ")";
}

inline void onig_init_once() {
  static const bool done = [] {
    OnigEncoding encodings[1] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
    return true;
  }();
  (void)done;
}

inline bool is_unicode_space(char32_t cp) {
  return ONIGENC_IS_CODE_CTYPE(ONIG_ENCODING_UTF8, OnigCodePoint(cp), ONIGENC_CTYPE_SPACE) != 0;
}
inline bool is_unicode_word(char32_t cp) {
  return ONIGENC_IS_CODE_CTYPE(ONIG_ENCODING_UTF8, OnigCodePoint(cp), ONIGENC_CTYPE_WORD) != 0;
}

/// A compiled Oniguruma regex (UTF-8, Oniguruma syntax: \p{..}, lookahead). Copies share it;
/// searching is thread-safe.
class onig_regex {
public:
  onig_regex() = default;
  onig_regex(const std::string& pattern, const std::string& where)
      : where_(where + ": regex '" + brief_text(pattern) + "'") {
    onig_init_once();
    OnigRegex re = nullptr;
    OnigErrorInfo info{};
    const auto* p = reinterpret_cast<const OnigUChar*>(pattern.data());
    const int rc = onig_new(&re, p, p + pattern.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                            ONIG_SYNTAX_ONIGURUMA, &info);
    if (rc != ONIG_NORMAL) throw error(where_ + " does not compile: " + onig_message(rc, &info));
    re_ = std::shared_ptr<OnigRegexType>(re, [](OnigRegex r) { onig_free(r); });
  }

  /// Call f(begin, end) for every non-empty, non-overlapping match in s, left to right.
  template <class F> void for_each_match(std::string_view s, F&& f) const {
    OnigRegion* region = onig_region_new();
    const auto* begin = reinterpret_cast<const OnigUChar*>(s.data());
    const auto* end = begin + s.size();
    std::size_t at = 0;
    while (at <= s.size()) {
      const int r = onig_search(re_.get(), begin, end, begin + at, end, region, ONIG_OPTION_NONE);
      if (r < 0) {
        if (r == ONIG_MISMATCH) break;
        onig_region_free(region, 1);
        throw error(where_ + " failed on the text: " + onig_message(r));
      }
      const auto mb = std::size_t(region->beg[0]);
      const auto me = std::size_t(region->end[0]);
      if (me == mb) { // empty match: step over one character
        if (mb >= s.size()) break;
        at = mb + std::max<std::size_t>(1, utf8::next_unit(s, mb).length);
        continue;
      }
      f(mb, me);
      at = me;
    }
    onig_region_free(region, 1);
  }

private:
  std::string where_; // "<JSON path>: regex '<pattern>'", for messages
  std::shared_ptr<OnigRegexType> re_;
};

} // namespace rodimus::io::detail
