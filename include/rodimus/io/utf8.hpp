// UTF-8 helpers of the tokenizer: scanning one character at a time with the Unicode "maximal
// subpart" rule for ill-formed input, validation, lossy conversion (each maximal ill-formed subpart
// becomes one U+FFFD, exactly as Rust's String::from_utf8_lossy that Hugging Face tokenizers uses),
// code point encoding, and a stream assembler that releases only complete characters.
//
// Well-formed sequences (Unicode 15, table 3-7):
//   00..7F                      one byte
//   C2..DF 80..BF               two bytes
//   E0 A0..BF 80..BF | E1..EC 80..BF 80..BF | ED 80..9F 80..BF | EE..EF 80..BF 80..BF
//   F0 90..BF 80..BF 80..BF | F1..F3 80..BF 80..BF 80..BF | F4 80..8F 80..BF 80..BF
// A maximal subpart is the longest prefix of a well-formed sequence found at a position, or one
// byte when the byte there cannot start one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rodimus/core/error.hpp"

namespace rodimus::io::utf8 {

/// What sits at a position of a byte string.
enum class unit_kind : std::uint8_t {
  character,  // a well-formed character of `length` bytes, code point `code_point`
  ill_formed, // a maximal ill-formed subpart of `length` bytes (one U+FFFD when lossy)
  truncated,  // the string ends inside a character that could still be completed
};

struct unit {
  unit_kind kind = unit_kind::character;
  std::size_t length = 0;
  char32_t code_point = 0;
};

namespace detail {
// The allowed range of the second byte for a lead byte (the later bytes are always 80..BF).
inline void second_byte_range(unsigned char lead, unsigned char& lo, unsigned char& hi) {
  lo = 0x80;
  hi = 0xBF;
  if (lead == 0xE0) lo = 0xA0;
  if (lead == 0xED) hi = 0x9F;
  if (lead == 0xF0) lo = 0x90;
  if (lead == 0xF4) hi = 0x8F;
}
} // namespace detail

/// Scan the unit that starts at `s[pos]` (pos < s.size()).
inline unit next_unit(std::string_view s, std::size_t pos) {
  const auto lead = static_cast<unsigned char>(s[pos]);
  if (lead < 0x80) return {unit_kind::character, 1, char32_t(lead)};
  std::size_t need = 0;
  char32_t cp = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
    cp = lead & 0x1Fu;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    cp = lead & 0x0Fu;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    cp = lead & 0x07u;
  } else {
    return {unit_kind::ill_formed, 1, 0};
  }
  unsigned char lo = 0, hi = 0;
  detail::second_byte_range(lead, lo, hi);
  for (std::size_t k = 1; k <= need; ++k) {
    if (pos + k >= s.size()) return {unit_kind::truncated, k, 0};
    const auto b = static_cast<unsigned char>(s[pos + k]);
    if (b < lo || b > hi) return {unit_kind::ill_formed, k, 0};
    cp = (cp << 6) | (b & 0x3Fu);
    lo = 0x80;
    hi = 0xBF;
  }
  return {unit_kind::character, need + 1, cp};
}

/// The byte offset of the first ill-formed (or truncated) unit, or npos when `s` is valid UTF-8.
inline std::size_t first_invalid(std::string_view s) {
  std::size_t pos = 0;
  while (pos < s.size()) {
    // ASCII runs are the common case: skip them a byte at a time without a call.
    if (static_cast<unsigned char>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const unit u = next_unit(s, pos);
    if (u.kind != unit_kind::character) return pos;
    pos += u.length;
  }
  return std::string_view::npos;
}

inline bool is_valid(std::string_view s) { return first_invalid(s) == std::string_view::npos; }

/// Throw rodimus::error naming `what` and the offset when `s` is not valid UTF-8.
inline void require_valid(std::string_view s, const std::string& what) {
  const std::size_t bad = first_invalid(s);
  if (bad == std::string_view::npos) return;
  static const char* hex = "0123456789abcdef";
  const auto b = static_cast<unsigned char>(s[bad]);
  throw error(what + ": invalid UTF-8 at byte " + std::to_string(bad) + " (0x" + hex[b >> 4] +
              hex[b & 15] + "): expected valid UTF-8 text");
}

/// Append the UTF-8 encoding of `cp` (cp < 0x110000, not a surrogate).
inline void append_code_point(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

inline constexpr std::string_view replacement_character = "\xEF\xBF\xBD"; // U+FFFD

/// `s` with every maximal ill-formed subpart (and a truncated tail) replaced by U+FFFD.
inline std::string to_valid_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t pos = 0;
  while (pos < s.size()) {
    const unit u = next_unit(s, pos);
    if (u.kind == unit_kind::character) {
      out.append(s.data() + pos, u.length);
    } else {
      out += replacement_character;
    }
    pos += u.length;
  }
  return out;
}

/// Bytes in, complete characters out: `push` returns the longest valid text that can be released
/// (ill-formed subparts as U+FFFD as soon as they are known to be ill-formed), holding back at most
/// the 3 bytes of a character not yet complete. `finish` releases what is held back (as U+FFFD).
/// The concatenation of all outputs equals to_valid_lossy of the concatenated inputs.
class stream_assembler {
public:
  std::string push(std::string_view bytes) {
    pending_.append(bytes.data(), bytes.size());
    std::string out;
    std::size_t pos = 0;
    while (pos < pending_.size()) {
      const unit u = next_unit(pending_, pos);
      if (u.kind == unit_kind::truncated) break;
      if (u.kind == unit_kind::character) {
        out.append(pending_, pos, u.length);
      } else {
        out += replacement_character;
      }
      pos += u.length;
    }
    pending_.erase(0, pos);
    return out;
  }
  std::string finish() {
    std::string out = to_valid_lossy(pending_);
    pending_.clear();
    return out;
  }
  /// Bytes held back (0..3).
  std::size_t pending_bytes() const { return pending_.size(); }

private:
  std::string pending_;
};

} // namespace rodimus::io::utf8
