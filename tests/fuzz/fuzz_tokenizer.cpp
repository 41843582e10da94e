// libFuzzer target: tokenizer.json loading, and the JSONL lines `rodimus tokenize` reads. Only
// rodimus::error may escape; whatever loads must encode and decode without crashing, giving ids
// inside its vocabulary. Modes, chosen by the first byte:
//   'E'  the rest is an encode line ({"text": "..."}) for a fixed small byte-level BPE tokenizer:
//        parsed as the tool parses it, then encoded; the ids must be in range and decode;
//   'D'  the rest is a decode line ({"ids": [...]}) for the same tokenizer, checked as the tool
//        checks it (ids in [0, vocab_size)) and decoded;
//   else the bytes are tokenizer.json text for io::tokenizer::from_json_text; a tokenizer that
//        loads encodes and decodes a fixed sample.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rodimus/core/error.hpp"
#include "rodimus/io/bpe.hpp"
#include "rodimus/io/tokenizer.hpp"

namespace {

/// A byte-level BPE tokenizer: the 256 byte characters, a few merges, one special token.
const rodimus::io::tokenizer& fixed_tokenizer() {
  static const rodimus::io::tokenizer t = [] {
    nlohmann::json vocab = nlohmann::json::object();
    for (int b = 0; b < 256; ++b)
      vocab[rodimus::io::byte_level::byte_to_text()[std::size_t(b)]] = b;
    const char* const merges[] = {"t h", "th e", "Ġ t", "i n", "a n"};
    nlohmann::json m = nlohmann::json::array();
    int id = 256;
    for (const char* merge : merges) {
      std::string s = merge;
      m.push_back(s);
      s.erase(s.find(' '), 1);
      vocab[s] = id++;
    }
    nlohmann::json j = {
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}},
        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
        {"decoder", {{"type", "ByteLevel"}}},
        {"added_tokens", {{{"id", id}, {"content", "<|endoftext|>"}, {"special", true}}}}};
    return rodimus::io::tokenizer::from_json(j, "fuzz/fixed.json");
  }();
  return t;
}

void check_ids(const rodimus::io::tokenizer& t, const std::vector<std::int32_t>& ids) {
  for (std::int32_t id : ids)
    if (id < 0 || id >= t.vocab_size()) std::abort(); // an id outside the vocabulary
}

/// Encode, check, decode: what `rodimus tokenize` does with a loaded tokenizer.
void round_trip(const rodimus::io::tokenizer& t, const std::string& text) {
  std::vector<std::int32_t> ids;
  try {
    ids = t.encode(text);
  } catch (const rodimus::error&) {
    return; // invalid UTF-8, a regex failure
  }
  check_ids(t, ids);
  try {
    (void)t.decode(ids, false);
  } catch (const rodimus::error&) { // no decoder
  }
}

void jsonl_line(const std::string& line, bool decode) {
  const rodimus::io::tokenizer& t = fixed_tokenizer();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception&) {
    return; // the tool reports "not a JSON line"
  }
  if (!j.is_object()) return;
  if (!decode) {
    auto it = j.find("text");
    if (it != j.end() && it->is_string()) round_trip(t, it->get<std::string>());
    return;
  }
  auto it = j.find("ids");
  if (it == j.end() || !it->is_array()) return;
  std::vector<std::int32_t> ids;
  for (const auto& v : *it) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 ||
        v.get<std::int64_t>() >= t.vocab_size())
      return; // the tool names the bad id
    ids.push_back(std::int32_t(v.get<std::int64_t>()));
  }
  (void)t.decode(ids);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    if (size > 0 && (data[0] == 'E' || data[0] == 'D')) {
      jsonl_line(bytes.substr(1), data[0] == 'D');
      return 0;
    }
    const rodimus::io::tokenizer t = rodimus::io::tokenizer::from_json_text(bytes, "fuzz.json");
    round_trip(t, "Hello, world! 12 <|endoftext|> the\tthen\n\xc3\xa9t\xc3\xa9");
  } catch (const rodimus::error&) {
  }
  return 0;
}
