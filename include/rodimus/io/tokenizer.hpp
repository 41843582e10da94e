// Text in, text out: a Hugging Face tokenizer.json byte-level BPE tokenizer (link rodimus::text,
// which adds Oniguruma, the regex engine Hugging Face tokenizers uses).
//
// encode(text):
//   1. text must be valid UTF-8 (else rodimus::error naming the byte offset);
//   2. added tokens (tokenizer.json "added_tokens") are cut out of the raw text: first those with
//      normalized=false, then, inside the remaining pieces, those with normalized=true; leftmost
//      match, longest on ties; single_word keeps a match only when no word character (\w) touches
//      it inside its piece; lstrip / rstrip widen the match over the whitespace (\s) on its left /
//      right;
//   3. every remaining piece goes through the pre-tokenizer: Split steps (regex or literal, with
//   the
//      five delimiter behaviours and invert), then ByteLevel: prepend ' ' when add_prefix_space and
//      the piece does not start with one, split with the GPT-2 regex when use_regex
//        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      (matched by detail::gpt2_split with Oniguruma's Unicode classes, tested equal to the
//      Oniguruma regex; Split patterns go through Oniguruma itself), and map every byte to its
//      byte-level character (rodimus/io/bpe.hpp);
//   4. every word is BPE-encoded (rodimus/io/bpe.hpp), through a cache keyed by the word's bytes;
//   5. the post-processor: none / ByteLevel (ids unchanged) / TemplateProcessing (single sequence).
// decode(ids): every id becomes its token (added tokens by their content), special tokens are
// optionally skipped, the ByteLevel decoder maps characters back to bytes, and ill-formed UTF-8 in
// the result becomes U+FFFD (one per maximal subpart, like Hugging Face's from_utf8_lossy).
//
// Supported: normalizer null (or an empty Sequence); pre_tokenizer null, ByteLevel, Split, or a
// Sequence of Split steps optionally ending with ByteLevel; model BPE (merges as "a b" strings or
// ["a", "b"] pairs; ignore_merges, byte_fallback, unk_token, fuse_unk honoured; dropout must be
// null or 0; continuing_subword_prefix / end_of_word_suffix must be null or empty); decoder null
// (then decode throws) or ByteLevel; post_processor null, ByteLevel, TemplateProcessing (single),
// or a Sequence of those. Anything else throws rodimus::error naming the JSON path and the type
// found.
//
// The pieces: io/onig_regex.hpp (the regex engine), io/pre_tokenizer.hpp (step 3),
// io/bpe.hpp (step 4 and the byte-level alphabet), this file (loading, added tokens, the
// post-processor, decode), io/stream_decoder.hpp (decode one id at a time), io/json_fields.hpp
// (reading the parsed tokenizer.json, shared with io/config.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rodimus/core/error.hpp"
#include "rodimus/io/bpe.hpp"
#include "rodimus/io/json_brief.hpp"
#include "rodimus/io/json_fields.hpp"
#include "rodimus/io/json_strict.hpp"
#include "rodimus/io/onig_regex.hpp"
#include "rodimus/io/pre_tokenizer.hpp"
#include "rodimus/io/text_file.hpp"
#include "rodimus/io/utf8.hpp"

namespace rodimus::io {

namespace detail {

/// The largest tokenizer.json read (real ones are at most a few tens of megabytes).
constexpr std::uint64_t max_tokenizer_bytes = 256u * 1000u * 1000u;
/// How deep tokenizer.json may nest containers (real ones nest about 7 deep).
constexpr int max_tokenizer_depth = 64;

} // namespace detail

/// One entry of tokenizer.json "added_tokens".
struct added_token {
  std::int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

class tokenizer {
public:
  /// Read and validate a tokenizer.json file; errors name the file and the JSON path.
  static tokenizer from_file(const std::string& path) {
    return from_json_text(
        detail::read_text_file(path, detail::max_tokenizer_bytes, "the tokenizer (tokenizer.json)"),
        path);
  }
  /// Parse tokenizer.json text strictly (a duplicate key, or nesting 64 deep, is an error);
  /// `source` names it in errors.
  static tokenizer from_json_text(const std::string& text,
                                  const std::string& source = "tokenizer.json") {
    return from_json(detail::parse_json_strict(text.data(), text.data() + text.size(), source,
                                               "tokenizer", detail::max_tokenizer_depth),
                     source);
  }
  static tokenizer from_json(const nlohmann::json& j,
                             const std::string& source = "tokenizer.json") {
    tokenizer t;
    try {
      t.load(j);
    } catch (const error& e) {
      throw error(source + ": " + e.what());
    } catch (const nlohmann::json::exception& e) {
      throw error(source + ": " + e.what());
    }
    return t;
  }

  /// Token ids of `text` (valid UTF-8). With add_special_tokens, a TemplateProcessing
  /// post-processor adds its special tokens (as Hugging Face's encode does by default).
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens = true) const {
    utf8::require_valid(text, "encode");
    std::vector<std::int32_t> ids;
    ids.reserve(text.size() / 3 + 4);
    if (add_special_tokens) append_template(template_prefix_, ids);
    // Added tokens: first those matched in the raw text, then (inside the pieces left) the
    // normalized ones. With no normalizer both see the same text.
    std::vector<segment> first;
    split_added(text, false, first);
    for (const segment& s : first) {
      if (s.id >= 0) {
        ids.push_back(s.id);
        continue;
      }
      std::vector<segment> second;
      split_added(s.text, true, second);
      for (const segment& s2 : second) {
        if (s2.id >= 0) {
          ids.push_back(s2.id);
        } else {
          encode_piece(s2.text, ids);
        }
      }
    }
    if (add_special_tokens) append_template(template_suffix_, ids);
    return ids;
  }

  /// The text of `ids` (U+FFFD for ill-formed UTF-8); an unknown id throws naming it. Special
  /// tokens are skipped by default, as in Hugging Face tokenizers' decode.
  std::string decode(const std::vector<std::int32_t>& ids, bool skip_special_tokens = true) const {
    return utf8::to_valid_lossy(decode_bytes(ids, skip_special_tokens));
  }

  /// The raw bytes of `ids` (may end inside a character or hold ill-formed UTF-8).
  std::string decode_bytes(const std::vector<std::int32_t>& ids,
                           bool skip_special_tokens = true) const {
    std::string out;
    for (auto id : ids)
      append_token_bytes(id, out, skip_special_tokens);
    return out;
  }

  /// Append the bytes of one token; throws on an unknown id or when the file has no decoder.
  void append_token_bytes(std::int32_t id, std::string& out,
                          bool skip_special_tokens = true) const {
    if (!has_decoder_) throw error("decode: tokenizer.json has no decoder (decoder is null)");
    auto a = added_by_id_.find(id);
    if (a != added_by_id_.end()) {
      const added_token& t = added_[a->second];
      if (skip_special_tokens && t.special) return;
      byte_level::decode_token(t.content, out);
      return;
    }
    const std::string* tok = model_.token(id);
    if (!tok) {
      throw error("decode: token id " + std::to_string(id) +
                  " is not in the vocabulary (ids are in [0, " + std::to_string(vocab_size()) +
                  "))");
    }
    byte_level::decode_token(*tok, out);
  }

  /// The id of a token (added tokens first, then the model vocabulary), or nullopt.
  std::optional<std::int32_t> find_token_id(std::string_view token) const {
    for (const auto& t : added_)
      if (t.content == token) return t.id;
    return model_.find(std::string(token));
  }
  /// The id of a token; throws rodimus::error naming it when absent.
  std::int32_t token_id(std::string_view token) const {
    auto id = find_token_id(token);
    if (!id) throw error("token '" + std::string(token) + "' is not in the vocabulary");
    return *id;
  }
  /// The token text of `id` (byte-level characters for model tokens); throws when unknown.
  std::string id_to_token(std::int32_t id) const {
    auto a = added_by_id_.find(id);
    if (a != added_by_id_.end()) return added_[a->second].content;
    const std::string* tok = model_.token(id);
    if (!tok) throw error("token id " + std::to_string(id) + " is not in the vocabulary");
    return *tok;
  }
  bool is_special(std::int32_t id) const {
    auto a = added_by_id_.find(id);
    return a != added_by_id_.end() && added_[a->second].special;
  }
  /// One more than the largest id of the model vocabulary and the added tokens (the number of rows
  /// an embedding table needs).
  std::int32_t vocab_size() const { return vocab_size_; }
  const std::vector<added_token>& added_tokens() const { return added_; }
  /// Number of BPE merges.
  std::size_t merge_count() const { return model_.merge_count(); }
  /// Empty the word cache (shared with copies of this tokenizer); for benchmarks and memory.
  void clear_cache() const {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    cache_->map.clear();
    cache_->keys.clear();
  }

private:
  struct segment {
    std::string_view text;
    std::int32_t id; // -1: text to pre-tokenize
  };
  struct word_cache {
    std::mutex mutex;
    std::unordered_map<std::string_view, std::vector<std::int32_t>> map;
    std::deque<std::string> keys; // owns the bytes the map's keys view
  };
  static constexpr std::size_t cache_capacity = 1u << 16; // words; the cache is emptied when full
  static constexpr std::size_t cache_max_word = 256;      // longer words are not cached

  tokenizer() : cache_(std::make_shared<word_cache>()) {}

  // ---- loading ----

  void load(const nlohmann::json& j) {
    detail::expect_object(j, "(top level)");
    for (const char* key : {"truncation", "padding"}) {
      if (detail::optional_member(j, key)) {
        throw error(std::string(key) + ": expected null (" + key + " is not supported), found " +
                    detail::type_name(j.at(key)));
      }
    }
    const nlohmann::json* added = detail::optional_member(j, "added_tokens");
    load_model(detail::member(j, "model", "tokenizer"),
               added && added->is_array() ? added->size() : 0);
    if (auto* n = detail::optional_member(j, "normalizer")) load_normalizer(*n, "normalizer");
    if (auto* p = detail::optional_member(j, "pre_tokenizer")) pre_.load(*p, "pre_tokenizer");
    if (auto* d = detail::optional_member(j, "decoder")) {
      const std::string type = detail::component_type(*d, "decoder");
      if (type != "ByteLevel") detail::unsupported("decoder", type, "null, ByteLevel");
      has_decoder_ = true;
    }
    if (added) load_added(*added, "added_tokens");
    if (auto* p = detail::optional_member(j, "post_processor"))
      load_post_processor(*p, "post_processor");
    vocab_size_ = model_.id_bound();
    for (auto& t : added_)
      vocab_size_ = std::max(vocab_size_, t.id + 1);
    // The post-processor's special tokens must name ids that exist (encode would emit them).
    for (const auto* tpl : {&template_prefix_, &template_suffix_})
      for (std::int32_t id : *tpl)
        if (id < 0 || id >= vocab_size_)
          throw error("tokenizer.json: post_processor: special token id " + std::to_string(id) +
                      " is not in the vocabulary (ids are in [0, " + std::to_string(vocab_size_) +
                      "))");
  }

  /// `added_count`: the number of added tokens, which may fill ids the vocabulary leaves out.
  void load_model(const nlohmann::json& m, std::size_t added_count) {
    const std::string path = "model";
    const std::string type = detail::component_type(m, path);
    if (type != "BPE") detail::unsupported(path, type, "BPE");
    const nlohmann::json& v = detail::member(m, "vocab", path);
    if (!v.is_object())
      throw error("model.vocab: expected an object of token -> id, found " + detail::type_name(v));
    std::unordered_map<std::string, std::int32_t> vocab;
    vocab.reserve(v.size());
    // Ids index dense tables: an id beyond what the file's tokens can fill would cost memory out of
    // proportion to the file (one id of 2^26 asked for 2 GB).
    const std::size_t id_limit = v.size() + added_count;
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string at = "model.vocab['" + detail::brief_text(it.key()) + "']";
      const std::int32_t id = detail::get_id(it.value(), at);
      if (std::size_t(id) >= id_limit)
        throw error(at + ": id " + std::to_string(id) + " is out of range: with " +
                    std::to_string(v.size()) + " vocabulary entries and " +
                    std::to_string(added_count) + " added tokens, ids are below " +
                    std::to_string(id_limit));
      vocab.emplace(it.key(), id);
    }
    const nlohmann::json& mj = detail::member(m, "merges", path);
    if (!mj.is_array())
      throw error("model.merges: expected an array, found " + detail::type_name(mj));
    std::vector<bpe_merge> merges;
    merges.reserve(mj.size());
    for (std::size_t i = 0; i < mj.size(); ++i) {
      const std::string at = "model.merges[" + std::to_string(i) + "]";
      const nlohmann::json& e = mj[i];
      if (e.is_string()) {
        const std::string s = e.get<std::string>();
        const auto sp = s.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() ||
            s.find(' ', sp + 1) != std::string::npos) {
          throw error(at + ": expected \"left right\" (two tokens and one space), found \"" +
                      detail::brief_text(s) + "\"");
        }
        merges.push_back({s.substr(0, sp), s.substr(sp + 1)});
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        merges.push_back({e[0].get<std::string>(), e[1].get<std::string>()});
      } else {
        throw error(at + ": expected \"left right\" or [\"left\", \"right\"], found " +
                    detail::brief_json(e));
      }
    }
    if (auto* d = detail::optional_member(m, "dropout")) {
      if (!d->is_number() || d->get<double>() != 0.0) {
        throw error(
            "model.dropout: expected null or 0 (BPE dropout is random and not supported), found " +
            detail::brief_json(*d));
      }
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (auto* s = detail::optional_member(m, key)) {
        if (!s->is_string() || !s->get<std::string>().empty()) {
          throw error(std::string("model.") + key + ": expected null (not supported), found " +
                      detail::brief_json(*s));
        }
      }
    }
    bpe_options opt;
    opt.ignore_merges = detail::get_bool(m, "ignore_merges", false, path);
    opt.byte_fallback = detail::get_bool(m, "byte_fallback", false, path);
    opt.fuse_unk = detail::get_bool(m, "fuse_unk", false, path);
    if (auto* u = detail::optional_member(m, "unk_token"))
      opt.unk_token = detail::get_string(*u, "model.unk_token");
    model_ = bpe_model(std::move(vocab), merges, opt, path);
  }

  void load_normalizer(const nlohmann::json& n, const std::string& path) {
    const std::string type = detail::component_type(n, path);
    if (type == "Sequence") {
      const nlohmann::json& list = detail::member(n, "normalizers", path);
      if (!list.is_array())
        throw error(path + ".normalizers: expected an array, found " + detail::type_name(list));
      for (std::size_t i = 0; i < list.size(); ++i) {
        load_normalizer(list[i], path + ".normalizers[" + std::to_string(i) + "]");
      }
      return;
    }
    detail::unsupported(path, type,
                        "null, an empty Sequence; NFC and other normalizers are not implemented");
  }

  void load_added(const nlohmann::json& a, const std::string& path) {
    if (!a.is_array()) throw error(path + ": expected an array, found " + detail::type_name(a));
    std::unordered_set<std::string_view> contents; // views of added_[k].content
    std::int32_t max_added = -1;
    added_.reserve(a.size()); // the views above must not move
    for (std::size_t i = 0; i < a.size(); ++i) {
      const std::string at = path + "[" + std::to_string(i) + "]";
      detail::expect_object(a[i], at);
      added_token t;
      t.id = detail::get_id(detail::member(a[i], "id", at), at + ".id");
      t.content = detail::get_string(detail::member(a[i], "content", at), at + ".content");
      if (t.content.empty()) throw error(at + ".content: expected a non-empty token");
      utf8::require_valid(t.content, at + ".content");
      t.single_word = detail::get_bool(a[i], "single_word", false, at);
      t.lstrip = detail::get_bool(a[i], "lstrip", false, at);
      t.rstrip = detail::get_bool(a[i], "rstrip", false, at);
      t.normalized = detail::get_bool(a[i], "normalized", false, at);
      t.special = detail::get_bool(a[i], "special", false, at);
      // Ids as Hugging Face assigns them when it loads the file (the "id" field is only checked
      // there, with a warning): a content already in the model vocabulary keeps that id; a new one
      // gets one more than the largest added id, or the model vocabulary size if that is larger.
      // A repeated content is ignored.
      if (contents.count(t.content)) continue;
      if (auto in_model = model_.find(t.content)) {
        t.id = *in_model;
      } else {
        const auto model_size = std::int32_t(model_.size());
        t.id = max_added < 0
                   ? model_size
                   : (max_added >= model_size || model_size == 0 ? max_added + 1 : model_size);
      }
      max_added = std::max(max_added, t.id);
      added_by_id_[t.id] = added_.size();
      added_.push_back(std::move(t));
      contents.insert(added_.back().content);
    }
    for (std::size_t i = 0; i < added_.size(); ++i) {
      auto& index = added_[i].normalized ? normalized_index_ : raw_index_;
      index[static_cast<unsigned char>(added_[i].content[0])].push_back(i);
    }
    // Longest first, so the first token that matches at a position is the longest one there.
    for (auto* index : {&raw_index_, &normalized_index_}) {
      for (auto& [byte, list] : *index) {
        (void)byte;
        std::stable_sort(list.begin(), list.end(), [&](std::size_t x, std::size_t y) {
          return added_[x].content.size() > added_[y].content.size();
        });
      }
    }
  }

  void load_post_processor(const nlohmann::json& p, const std::string& path) {
    const std::string type = detail::component_type(p, path);
    if (type == "ByteLevel") return; // only moves offsets; the ids are unchanged
    if (type == "Sequence") {
      const nlohmann::json& list = detail::member(p, "processors", path);
      if (!list.is_array())
        throw error(path + ".processors: expected an array, found " + detail::type_name(list));
      for (std::size_t i = 0; i < list.size(); ++i) {
        const std::string at = path + ".processors[" + std::to_string(i) + "]";
        if (detail::component_type(list[i], at) == "Sequence")
          detail::unsupported(at, "Sequence", "ByteLevel, TemplateProcessing");
        load_post_processor(list[i], at);
      }
      return;
    }
    if (type != "TemplateProcessing")
      detail::unsupported(path, type, "null, ByteLevel, TemplateProcessing, Sequence");
    if (has_template_) throw error(path + ": more than one TemplateProcessing is not supported");
    has_template_ = true;
    const nlohmann::json& single = detail::member(p, "single", path);
    if (!single.is_array())
      throw error(path + ".single: expected an array, found " + detail::type_name(single));
    const nlohmann::json& specials = detail::member(p, "special_tokens", path);
    detail::expect_object(specials, path + ".special_tokens");
    bool seen_sequence = false;
    for (std::size_t i = 0; i < single.size(); ++i) {
      const std::string at = path + ".single[" + std::to_string(i) + "]";
      detail::expect_object(single[i], at);
      if (auto it = single[i].find("Sequence"); it != single[i].end()) {
        const std::string which =
            detail::get_string(detail::member(*it, "id", at + ".Sequence"), at + ".Sequence.id");
        if (which != "A")
          throw error(at + ".Sequence.id: expected 'A' in a single-sequence template, found '" +
                      which + "'");
        if (seen_sequence) throw error(at + ": the sequence appears twice");
        seen_sequence = true;
      } else if (auto it2 = single[i].find("SpecialToken"); it2 != single[i].end()) {
        const std::string name = detail::get_string(
            detail::member(*it2, "id", at + ".SpecialToken"), at + ".SpecialToken.id");
        const std::string sp = path + ".special_tokens['" + name + "']";
        auto st = specials.find(name);
        if (st == specials.end()) throw error(sp + ": missing (used by " + at + ")");
        const nlohmann::json& ids = detail::member(*st, "ids", sp);
        if (!ids.is_array())
          throw error(sp + ".ids: expected an array, found " + detail::type_name(ids));
        auto& dst = seen_sequence ? template_suffix_ : template_prefix_;
        for (std::size_t k = 0; k < ids.size(); ++k)
          dst.push_back(detail::get_id(ids[k], sp + ".ids[" + std::to_string(k) + "]"));
      } else {
        throw error(at + ": expected {\"Sequence\": ...} or {\"SpecialToken\": ...}, found " +
                    detail::brief_json(single[i]));
      }
    }
    if (!seen_sequence) throw error(path + ".single: has no {\"Sequence\": {\"id\": \"A\"}} entry");
  }

  // ---- encoding ----

  static void append_template(const std::vector<std::int32_t>& part,
                              std::vector<std::int32_t>& ids) {
    ids.insert(ids.end(), part.begin(), part.end());
  }

  /// Cut `s` at the added tokens of one kind (normalized or not), leftmost-longest.
  void split_added(std::string_view s, bool normalized, std::vector<segment>& out) const {
    const auto& index = normalized ? normalized_index_ : raw_index_;
    if (index.empty()) {
      if (!s.empty()) out.push_back({s, -1});
      return;
    }
    std::size_t done = 0; // bytes of s already emitted
    std::size_t pos = 0;
    while (pos < s.size()) {
      auto it = index.find(static_cast<unsigned char>(s[pos]));
      const added_token* hit = nullptr;
      if (it != index.end()) {
        for (std::size_t k : it->second) {
          const std::string& c = added_[k].content;
          if (s.compare(pos, c.size(), c) == 0) {
            hit = &added_[k];
            break;
          }
        }
      }
      if (!hit) {
        ++pos;
        continue;
      }
      std::size_t start = pos;
      std::size_t stop = pos + hit->content.size();
      if (hit->single_word && (touches_word_before(s, start) || touches_word_after(s, stop))) {
        pos = stop; // a rejected match is skipped as a whole, like the automaton does
        continue;
      }
      if (hit->lstrip) start = std::max(done, whitespace_run_start(s, start));
      if (hit->rstrip) stop = whitespace_run_end(s, stop);
      if (done < start) out.push_back({s.substr(done, start - done), -1});
      out.push_back({s.substr(start, stop - start), hit->id});
      done = stop;
      pos = stop;
    }
    if (done < s.size()) out.push_back({s.substr(done), -1});
  }

  static char32_t code_point_before(std::string_view s, std::size_t at) {
    std::size_t b = at - 1;
    while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80)
      --b;
    return utf8::next_unit(s, b).code_point;
  }
  static bool touches_word_before(std::string_view s, std::size_t at) {
    return at > 0 && detail::is_unicode_word(code_point_before(s, at));
  }
  static bool touches_word_after(std::string_view s, std::size_t at) {
    return at < s.size() && detail::is_unicode_word(utf8::next_unit(s, at).code_point);
  }
  static std::size_t whitespace_run_start(std::string_view s, std::size_t at) {
    while (at > 0) {
      std::size_t b = at - 1;
      while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80)
        --b;
      if (!detail::is_unicode_space(utf8::next_unit(s, b).code_point)) break;
      at = b;
    }
    return at;
  }
  static std::size_t whitespace_run_end(std::string_view s, std::size_t at) {
    while (at < s.size()) {
      const utf8::unit u = utf8::next_unit(s, at);
      if (!detail::is_unicode_space(u.code_point)) break;
      at += u.length;
    }
    return at;
  }

  /// Pre-tokenize one piece of text (no added tokens in it) and BPE-encode its words.
  void encode_piece(std::string_view text, std::vector<std::int32_t>& ids) const {
    if (text.empty()) return;
    std::deque<std::string> arena; // pieces that are not views of `text` (prefix space added)
    std::vector<std::string_view> words;
    pre_.split(text, arena, words);
    std::string mapped;
    for (std::string_view word : words)
      encode_word(word, mapped, ids);
  }

  /// BPE-encode one pre-tokenized word (raw bytes), through the cache.
  void encode_word(std::string_view word, std::string& mapped,
                   std::vector<std::int32_t>& ids) const {
    const bool cacheable = word.size() <= cache_max_word;
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_->mutex);
      auto it = cache_->map.find(word);
      if (it != cache_->map.end()) {
        ids.insert(ids.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::string_view model_text = word;
    if (pre_.byte_level()) {
      mapped.clear();
      byte_level::encode_bytes(word, mapped);
      model_text = mapped;
    }
    const std::size_t first = ids.size();
    model_.encode_word(model_text, ids);
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_->mutex);
      if (cache_->map.size() >= cache_capacity) {
        cache_->map.clear();
        cache_->keys.clear();
      }
      cache_->keys.emplace_back(word);
      cache_->map.emplace(cache_->keys.back(), std::vector<std::int32_t>(
                                                   ids.begin() + std::ptrdiff_t(first), ids.end()));
    }
  }

  bpe_model model_;
  pre_tokenizer pre_;
  bool has_decoder_ = false;
  std::vector<added_token> added_;
  std::unordered_map<std::int32_t, std::size_t> added_by_id_;
  std::unordered_map<unsigned char, std::vector<std::size_t>> raw_index_,
      normalized_index_; // first byte -> tokens
  bool has_template_ = false;
  std::vector<std::int32_t> template_prefix_, template_suffix_;
  std::int32_t vocab_size_ = 0;
  std::shared_ptr<word_cache> cache_; // shared by copies; guarded by its mutex
};

} // namespace rodimus::io
