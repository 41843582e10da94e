// Byte-pair encoding (the "BPE" model of Hugging Face tokenizers) and the GPT-2 byte-level
// alphabet.
//
// Byte-level alphabet: byte b maps to the code point b when b is printable Latin-1 ('!'..'~',
// '¡'..'¬', '®'..'ÿ'), otherwise to 256 + n where n counts the non-printable bytes below b
// (so ' ' -> 'Ġ' U+0120, '\n' -> 'Ċ' U+010A). Every token of a byte-level vocabulary is a string
// over these 256 characters.
//
// BPE of one word w = c_1 .. c_n (characters of the model's alphabet):
//   symbols := [id(c_1), .., id(c_n)]
//   repeat: among adjacent pairs (a, b) that have a merge, take the one of lowest rank (the
//           leftmost on ties), replace it by id(token(a) + token(b)); until no pair has a merge.
// Ranks are the positions in model.merges. Implemented with a min-heap over (rank, position) and
// lazy invalidation, so a word of n characters costs O(n log n) instead of O(n^2).
// A character missing from the vocabulary becomes its <0xHH> byte tokens (byte_fallback), else the
// unk token (consecutive ones fused with fuse_unk), else it is dropped (as Hugging Face does).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "rodimus/core/error.hpp"
#include "rodimus/io/utf8.hpp"

namespace rodimus::io {

namespace byte_level {

/// The code point that byte b stands for.
inline const std::array<char32_t, 256>& byte_to_code_point() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable =
          (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[std::size_t(b)] = printable ? char32_t(b) : next++;
    }
    return t;
  }();
  return table;
}

/// The UTF-8 text of the character that byte b stands for.
inline const std::array<std::string, 256>& byte_to_text() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    for (int b = 0; b < 256; ++b)
      utf8::append_code_point(t[std::size_t(b)], byte_to_code_point()[std::size_t(b)]);
    return t;
  }();
  return table;
}

/// The byte that code point cp stands for, or -1 when cp is not in the alphabet (all are < 0x144).
inline int code_point_to_byte(char32_t cp) {
  static const std::array<std::int16_t, 0x144> table = [] {
    std::array<std::int16_t, 0x144> t{};
    t.fill(-1);
    for (int b = 0; b < 256; ++b)
      t[byte_to_code_point()[std::size_t(b)]] = std::int16_t(b);
    return t;
  }();
  return cp < table.size() ? table[cp] : -1;
}

/// Append the byte-level text of raw bytes `s` to `out`.
inline void encode_bytes(std::string_view s, std::string& out) {
  for (unsigned char b : s)
    out += byte_to_text()[b];
}

/// Append the bytes that a token stands for. Like Hugging Face's ByteLevel decoder, a token with a
/// character outside the alphabet contributes its own UTF-8 bytes unchanged.
inline void decode_token(std::string_view token, std::string& out) {
  const std::size_t start = out.size();
  std::size_t pos = 0;
  while (pos < token.size()) {
    const utf8::unit u = utf8::next_unit(token, pos);
    const int b = u.kind == utf8::unit_kind::character ? code_point_to_byte(u.code_point) : -1;
    if (b < 0) {
      out.resize(start);
      out.append(token.data(), token.size());
      return;
    }
    out += char(b);
    pos += u.length;
  }
}

} // namespace byte_level

struct bpe_options {
  bool ignore_merges = false; // a word that is itself in the vocabulary is one token
  bool byte_fallback = false; // unknown characters become their <0xHH> tokens
  std::optional<std::string> unk_token;
  bool fuse_unk = false;
};

/// One merge of model.merges, with its index (the rank) for error messages.
struct bpe_merge {
  std::string left, right;
};

class bpe_model {
public:
  bpe_model() = default;

  /// `vocab` token -> id; `merges` in rank order; `where` names the JSON object (e.g. "model") in
  /// errors, which name the entry: "model.merges[17]: 'ab' is not in model.vocab".
  bpe_model(std::unordered_map<std::string, std::int32_t> vocab,
            const std::vector<bpe_merge>& merges, bpe_options options, const std::string& where)
      : vocab_(std::move(vocab)), options_(std::move(options)) {
    std::int32_t max_id = -1;
    for (auto& [tok, id] : vocab_) {
      if (id < 0)
        throw error(where + ".vocab['" + tok + "']: expected an id >= 0, found " +
                    std::to_string(id));
      if (id > max_id) max_id = id;
    }
    id_to_token_.assign(std::size_t(max_id + 1), std::string());
    has_id_.assign(std::size_t(max_id + 1), false);
    for (auto& [tok, id] : vocab_) {
      if (has_id_[std::size_t(id)]) {
        throw error(where + ".vocab: id " + std::to_string(id) + " is given to both '" +
                    id_to_token_[std::size_t(id)] + "' and '" + tok + "'");
      }
      has_id_[std::size_t(id)] = true;
      id_to_token_[std::size_t(id)] = tok;
    }
    char_ids_.fill(-1);
    for (char32_t cp = 0; cp < char_ids_.size(); ++cp) {
      std::string s;
      utf8::append_code_point(s, cp);
      auto it = vocab_.find(s);
      if (it != vocab_.end()) char_ids_[cp] = it->second;
    }
    merges_.reserve(merges.size() * 2);
    for (std::size_t i = 0; i < merges.size(); ++i) {
      const std::string at = where + ".merges[" + std::to_string(i) + "]";
      const auto a = vocab_.find(merges[i].left);
      if (a == vocab_.end())
        throw error(at + ": '" + merges[i].left + "' is not in " + where + ".vocab");
      const auto b = vocab_.find(merges[i].right);
      if (b == vocab_.end())
        throw error(at + ": '" + merges[i].right + "' is not in " + where + ".vocab");
      const auto c = vocab_.find(merges[i].left + merges[i].right);
      if (c == vocab_.end()) {
        throw error(at + ": the merged token '" + merges[i].left + merges[i].right +
                    "' is not in " + where + ".vocab");
      }
      // A repeated pair keeps its last rank, as in Hugging Face (its merge map is built by
      // insertion).
      merges_[pair_key(a->second, b->second)] = merge_value{std::int32_t(i), c->second};
    }
    if (options_.unk_token) {
      auto it = vocab_.find(*options_.unk_token);
      if (it == vocab_.end())
        throw error(where + ".unk_token: '" + *options_.unk_token + "' is not in " + where +
                    ".vocab");
      unk_id_ = it->second;
    }
    if (options_.byte_fallback) {
      static const char* hex = "0123456789ABCDEF";
      for (int b = 0; b < 256; ++b) {
        const std::string name = std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
        auto it = vocab_.find(name);
        byte_ids_[std::size_t(b)] = it == vocab_.end() ? -1 : it->second;
      }
    }
  }

  std::optional<std::int32_t> find(const std::string& token) const {
    auto it = vocab_.find(token);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
  }
  /// The token of `id`, or nullptr when the vocabulary has no such id.
  const std::string* token(std::int32_t id) const {
    if (id < 0 || std::size_t(id) >= has_id_.size() || !has_id_[std::size_t(id)]) return nullptr;
    return &id_to_token_[std::size_t(id)];
  }
  /// One more than the largest id.
  std::int32_t id_bound() const { return std::int32_t(id_to_token_.size()); }
  std::size_t size() const { return vocab_.size(); }
  std::size_t merge_count() const { return merges_.size(); }

  /// Append the ids of one word (text in the model's alphabet) to `out`.
  void encode_word(std::string_view word, std::vector<std::int32_t>& out) const {
    if (word.empty()) return;
    if (options_.ignore_merges) {
      auto it = vocab_.find(std::string(word));
      if (it != vocab_.end()) {
        out.push_back(it->second);
        return;
      }
    }
    std::vector<symbol> syms;
    syms.reserve(word.size());
    std::size_t pos = 0;
    while (pos < word.size()) {
      const utf8::unit u = utf8::next_unit(word, pos);
      const std::size_t len = u.kind == utf8::unit_kind::character ? u.length : word.size() - pos;
      std::int32_t id = -1;
      if (u.kind == utf8::unit_kind::character && u.code_point < char_ids_.size()) {
        id = char_ids_[u.code_point];
      } else {
        auto it = vocab_.find(std::string(word.substr(pos, len)));
        if (it != vocab_.end()) id = it->second;
      }
      if (id >= 0) {
        push_symbol(syms, id);
      } else {
        bool done = false;
        if (options_.byte_fallback) {
          bool all = true;
          for (std::size_t k = 0; k < len; ++k)
            all &= byte_ids_[static_cast<unsigned char>(word[pos + k])] >= 0;
          if (all) {
            for (std::size_t k = 0; k < len; ++k)
              push_symbol(syms, byte_ids_[static_cast<unsigned char>(word[pos + k])]);
            done = true;
          }
        }
        if (!done && unk_id_ >= 0) {
          if (!(options_.fuse_unk && !syms.empty() && syms.back().id == unk_id_))
            push_symbol(syms, unk_id_);
        }
      }
      pos += len;
    }
    apply_merges(syms);
    // The first symbol always survives (a merge keeps its left symbol).
    for (std::int32_t i = syms.empty() ? -1 : 0; i >= 0; i = syms[std::size_t(i)].next)
      out.push_back(syms[std::size_t(i)].id);
  }

private:
  struct symbol {
    std::int32_t id;
    std::int32_t prev, next; // neighbours in the word, -1 at the ends
    bool alive;
  };
  struct merge_value {
    std::int32_t rank;
    std::int32_t result;
  };
  struct candidate {
    std::int32_t rank, pos, left, right, result;
    bool operator>(const candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };

  static std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
    return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b);
  }
  static void push_symbol(std::vector<symbol>& syms, std::int32_t id) {
    const auto n = std::int32_t(syms.size());
    if (n > 0) syms.back().next = n;
    syms.push_back(symbol{id, n - 1, -1, true});
  }

  void apply_merges(std::vector<symbol>& syms) const {
    if (syms.size() < 2) return;
    std::priority_queue<candidate, std::vector<candidate>, std::greater<candidate>> heap;
    auto consider = [&](std::int32_t i) {
      if (i < 0) return;
      const std::int32_t j = syms[std::size_t(i)].next;
      if (j < 0) return;
      auto it = merges_.find(pair_key(syms[std::size_t(i)].id, syms[std::size_t(j)].id));
      if (it == merges_.end()) return;
      heap.push(candidate{it->second.rank, i, syms[std::size_t(i)].id, syms[std::size_t(j)].id,
                          it->second.result});
    };
    for (std::int32_t i = 0; i + 1 < std::int32_t(syms.size()); ++i)
      consider(i);
    while (!heap.empty()) {
      const candidate c = heap.top();
      heap.pop();
      symbol& l = syms[std::size_t(c.pos)];
      if (!l.alive || l.id != c.left || l.next < 0) continue;
      symbol& r = syms[std::size_t(l.next)];
      if (r.id != c.right) continue;
      l.id = c.result;
      r.alive = false;
      l.next = r.next;
      if (r.next >= 0) syms[std::size_t(r.next)].prev = c.pos;
      consider(l.prev);
      consider(c.pos);
    }
  }

  std::unordered_map<std::string, std::int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  std::unordered_map<std::uint64_t, merge_value> merges_;
  std::array<std::int32_t, 0x200> char_ids_{}; // id of each single-character token below U+0200
  std::array<std::int32_t, 256> byte_ids_{};   // <0xHH> tokens (byte_fallback)
  std::int32_t unk_id_ = -1;
  bpe_options options_;
};

} // namespace rodimus::io
