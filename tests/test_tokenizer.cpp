// rodimus::io::tokenizer against the Hugging Face tokenizers library: the tiny-coder golden file,
// a corpus of 2447 strings (source code, prose, 100+ languages, random Unicode, whitespace runs,
// special tokens inside text) whose ids the library produced (scripts/tokenizer_oracle/oracle.js),
// configuration variants of the same file, round trips and the streaming decoder.
#include "support/test_support.hpp"

#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "rodimus/io/stream_decoder.hpp"
#include "rodimus/io/tokenizer.hpp"

using namespace rodimus;
using nlohmann::json;

namespace {

std::string tokenizer_path() {
  return test::source_dir() + "/examples/models/tiny-coder/tokenizer.json";
}
std::string tok_dir() { return test::data_dir() + "/tokenizer"; }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

const io::tokenizer& tiny() {
  static const io::tokenizer t = io::tokenizer::from_file(tokenizer_path());
  return t;
}

std::vector<std::string> corpus() {
  std::vector<std::string> out;
  for (auto& j : read_jsonl(tok_dir() + "/corpus.jsonl"))
    out.push_back(j.at("text").get<std::string>());
  return out;
}

std::string show(const std::vector<std::int32_t>& ids) {
  std::string s;
  for (auto id : ids)
    s += std::to_string(id) + " ";
  return s;
}

// The same edits as applyVariant in scripts/tokenizer_oracle/oracle.js.
json apply_variant(json base, const json& v) {
  if (v.contains("set")) {
    for (auto it = v["set"].begin(); it != v["set"].end(); ++it) {
      json* o = &base;
      std::string key = it.key();
      for (auto dot = key.find('.'); dot != std::string::npos; dot = key.find('.')) {
        o = &(*o)[key.substr(0, dot)];
        key = key.substr(dot + 1);
      }
      (*o)[key] = it.value();
    }
  }
  if (v.contains("add_tokens"))
    for (auto& t : v["add_tokens"])
      base["added_tokens"].push_back(t);
  if (v.value("merges_as_strings", false)) {
    for (auto& m : base["model"]["merges"])
      if (m.is_array()) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  }
  return base;
}

std::vector<std::int32_t> parse_ids(const std::string& s) {
  std::vector<std::int32_t> ids;
  std::istringstream in(s);
  std::int32_t x;
  while (in >> x)
    ids.push_back(x);
  return ids;
}

/// A random valid UTF-8 string: ASCII, whitespace, Latin, CJK, emoji, combining marks, controls.
std::string random_utf8(std::mt19937_64& g, std::size_t chars) {
  static const std::pair<char32_t, char32_t> ranges[] = {
      {0x20, 0x7E},     {0x09, 0x0D},       {0xA0, 0x24F},      {0x300, 0x36F},
      {0x370, 0x3FF},   {0x400, 0x4FF},     {0x600, 0x6FF},     {0x2000, 0x206F},
      {0x3000, 0x30FF}, {0x4E00, 0x9FFF},   {0xAC00, 0xD7A3},   {0xE000, 0xF8FF},
      {0xFFF0, 0xFFFF}, {0x1F300, 0x1F64F}, {0x20000, 0x2A6DF}, {0x10FF00, 0x10FFFF}};
  std::string s;
  for (std::size_t i = 0; i < chars; ++i) {
    const auto& r = ranges[g() % (sizeof(ranges) / sizeof(ranges[0]))];
    char32_t cp = r.first + char32_t(g() % (r.second - r.first + 1));
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
    if (g() % 8 == 0) s += std::string(g() % 5 + 1, ' ');
    io::utf8::append_code_point(s, cp);
  }
  return s;
}

} // namespace

TEST_CASE(
    "tiny-coder golden: ids and decoded text of every case, as Hugging Face tokenizers 0.23.2") {
  const json golden = json::parse(read_text(tok_dir() + "/tokenizer_golden.json"));
  const auto& cases = golden.at("cases");
  REQUIRE(cases.size() >= 40);
  for (const auto& c : cases) {
    const std::string text = c.at("text").get<std::string>();
    const auto want = c.at("ids").get<std::vector<std::int32_t>>();
    INFO("text: " << json(text).dump());
    const auto got = tiny().encode(text);
    CHECK_MESSAGE(got == want, "got " << show(got) << " want " << show(want));
    CHECK(tiny().decode(want) == c.at("decoded").get<std::string>());
  }
  CHECK(tiny().vocab_size() == 2048);
  CHECK(tiny().token_id("<|endoftext|>") == 0);
  CHECK(tiny().is_special(0));
  CHECK(tiny().merge_count() == 1791);
}

TEST_CASE(
    "corpus: ids, decoded text and round trip of 2447 strings match the Hugging Face library") {
  const auto texts = corpus();
  const auto expected = read_jsonl(tok_dir() + "/expected.jsonl");
  REQUIRE(texts.size() >= 2000);
  REQUIRE(expected.size() == texts.size());
  std::size_t mismatches = 0, tokens = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto want = expected[i].at("ids").get<std::vector<std::int32_t>>();
    const auto got = tiny().encode(texts[i]);
    tokens += got.size();
    if (got != want) {
      if (++mismatches <= 5) {
        FAIL_CHECK("corpus line " << i + 1 << " " << json(texts[i]).dump() << "\n got  "
                                  << show(got) << "\n want " << show(want));
      }
      continue;
    }
    const std::string decoded = expected[i].value("decoded", texts[i]);
    if (tiny().decode(got) != decoded) FAIL_CHECK("decode, corpus line " << i + 1);
    if (tiny().decode(got, false) != texts[i])
      FAIL_CHECK("round trip with special tokens, corpus line " << i + 1);
  }
  CHECK(mismatches == 0);
  CHECK(tokens > 50000);
  // The second pass goes through the word cache and must give the same ids.
  for (std::size_t i = 0; i < texts.size(); i += 7) {
    CHECK(tiny().encode(texts[i]) == expected[i].at("ids").get<std::vector<std::int32_t>>());
  }
}

TEST_CASE("configuration variants (prefix space, Split sequences, added-token flags, template, "
          "...) match") {
  const json base = json::parse(read_text(tokenizer_path()));
  const json spec = json::parse(read_text(tok_dir() + "/variants.json"));
  const json want = json::parse(read_text(tok_dir() + "/variants_expected.json"));
  const auto texts = corpus();
  const std::size_t stride = spec.at("stride").get<std::size_t>();
  REQUIRE(spec.at("variants").size() >= 8);
  for (const auto& v : spec.at("variants")) {
    const std::string name = v.at("name").get<std::string>();
    INFO("variant " << name);
    const auto t = io::tokenizer::from_json(apply_variant(base, v), name);
    const auto& rows = want.at("variants").at(name);
    REQUIRE(rows.size() == (texts.size() + stride - 1) / stride);
    std::size_t bad = 0;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const auto w = parse_ids(rows[r].get<std::string>());
      const auto got = t.encode(texts[r * stride]);
      if (got != w && ++bad <= 3) {
        FAIL_CHECK("line " << r * stride + 1 << " " << json(texts[r * stride]).dump() << "\n got  "
                           << show(got) << "\n want " << show(w));
      }
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("template post-processor: add_special_tokens=false gives the plain ids") {
  json j = json::parse(read_text(tokenizer_path()));
  j["post_processor"] = json::parse(R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "pair": [], "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [0], "tokens": ["<|endoftext|>"]}}})");
  const auto t = io::tokenizer::from_json(j);
  const auto plain = tiny().encode("def f(x):");
  std::vector<std::int32_t> with = {0};
  with.insert(with.end(), plain.begin(), plain.end());
  CHECK(t.encode("def f(x):") == with);
  CHECK(t.encode("def f(x):", false) == plain);
}

TEST_CASE("random valid UTF-8 round-trips through encode and decode; copies and threads agree") {
  auto g = test::rng(11);
  std::vector<std::string> texts;
  for (int i = 0; i < 300; ++i)
    texts.push_back(random_utf8(g, g() % 60));
  std::vector<std::vector<std::int32_t>> ids;
  for (auto& s : texts) {
    ids.push_back(tiny().encode(s));
    REQUIRE_MESSAGE(tiny().decode(ids.back(), false) == s, json(s).dump());
    for (auto id : ids.back())
      REQUIRE((id >= 0 && id < tiny().vocab_size()));
  }
  const io::tokenizer copy = tiny(); // shares the word cache
  std::vector<std::vector<std::int32_t>> a(texts.size()), b(texts.size());
  std::thread t1([&] {
    for (std::size_t i = 0; i < texts.size(); ++i)
      a[i] = copy.encode(texts[i]);
  });
  std::thread t2([&] {
    for (std::size_t i = texts.size(); i-- > 0;)
      b[i] = io::tokenizer::from_file(tokenizer_path()).encode(texts[i]);
  });
  t1.join();
  t2.join();
  CHECK(a == ids);
  CHECK(b == ids);
}

TEST_CASE("the GPT-2 pattern without a regex engine equals the Oniguruma regex") {
  const io::detail::onig_regex re(io::detail::gpt2_pattern(), "test");
  auto g = test::rng(13);
  std::vector<std::string> texts = corpus();
  for (int i = 0; i < 3000; ++i)
    texts.push_back(random_utf8(g, g() % 40));
  // Short strings over the characters where the alternatives meet.
  const char* atoms[] = {" ",
                         "  ",
                         "\t",
                         "\n",
                         "'",
                         "s",
                         "t",
                         "re",
                         "ll",
                         "d",
                         "x",
                         "7",
                         "\xc2\xa0",
                         "\xe3\x80\x80",
                         "\xc2\xb2",
                         "\xd9\xa3",
                         "\xe2\x80\xa8",
                         "\x1c",
                         "\x85",
                         ".",
                         "-",
                         "\xe6\x97\xa5",
                         "\xcc\x81",
                         "\xf0\x9f\x99\x82"};
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    for (std::uint64_t k = g() % 8; k-- > 0;)
      s += atoms[g() % (sizeof(atoms) / sizeof(atoms[0]))];
    texts.push_back(s);
  }
  std::size_t bad = 0;
  for (const auto& s : texts) {
    std::vector<std::pair<std::size_t, std::size_t>> a, b;
    re.for_each_match(s, [&](std::size_t x, std::size_t y) { a.emplace_back(x, y); });
    io::detail::gpt2_split(s, [&](std::size_t x, std::size_t y) { b.emplace_back(x, y); });
    if (a != b && ++bad <= 5) FAIL_CHECK("splits differ on " << json(s).dump());
  }
  CHECK(bad == 0);
}

TEST_CASE("utf8_stream_decoder releases only complete characters and adds up to decode") {
  auto g = test::rng(12);
  auto texts = corpus();
  std::vector<std::string> sample;
  for (std::size_t i = 0; i < texts.size(); i += 5)
    sample.push_back(texts[i]);
  for (int i = 0; i < 100; ++i)
    sample.push_back(random_utf8(g, 30));
  std::size_t held_back = 0;
  for (const auto& s : sample) {
    const auto ids = tiny().encode(s);
    io::utf8_stream_decoder dec(tiny(), false);
    std::string streamed;
    for (auto id : ids) {
      const std::string piece = dec.push(id);
      REQUIRE(io::utf8::is_valid(piece));
      held_back += dec.pending_bytes() > 0;
      streamed += piece;
    }
    streamed += dec.finish();
    REQUIRE(streamed == s);
  }
  CHECK(held_back > 0); // the corpus does split characters across tokens

  // Byte tokens in a random order: ill-formed sequences become U+FFFD exactly as decode does.
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<std::int32_t> ids;
    for (int k = 0; k < 12; ++k)
      ids.push_back(std::int32_t(g() % std::uint64_t(tiny().vocab_size())));
    io::utf8_stream_decoder dec(tiny());
    std::string streamed;
    for (auto id : ids)
      streamed += dec.push(id);
    streamed += dec.finish();
    REQUIRE(streamed == tiny().decode(ids));
    REQUIRE(io::utf8::is_valid(streamed));
  }
}

TEST_CASE("lossy UTF-8: the maximal-subpart example of the Unicode standard (table 3-8)") {
  // 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 -> a FFFD FFFD FFFD b FFFD c FFFD FFFD d
  const std::string in = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  const std::string r(io::utf8::replacement_character);
  CHECK(io::utf8::to_valid_lossy(in) == "a" + r + r + r + "b" + r + "c" + r + r + "d");
  // Every split of it through the stream assembler gives the same text.
  for (std::size_t cut = 0; cut <= in.size(); ++cut) {
    io::utf8::stream_assembler s;
    std::string out = s.push(in.substr(0, cut));
    out += s.push(in.substr(cut));
    out += s.finish();
    CHECK(out == io::utf8::to_valid_lossy(in));
  }
}
