// rodimus::io::tokenizer on bad input: malformed or unsupported tokenizer.json files (the error
// names the JSON path and what was found), invalid UTF-8 text (an error naming the byte offset,
// never a crash), unknown ids; and the `rodimus tokenize` command through the built binary.
#include "support/test_support.hpp"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include <nlohmann/json.hpp>

#include "rodimus/io/tokenizer.hpp"

using namespace rodimus;
using nlohmann::json;

namespace {

std::string tokenizer_path() {
  return test::source_dir() + "/examples/models/tiny-coder/tokenizer.json";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const json& base() {
  static const json j = json::parse(read_text(tokenizer_path()));
  return j;
}

const io::tokenizer& tiny() {
  static const io::tokenizer t = io::tokenizer::from_file(tokenizer_path());
  return t;
}

/// The message of the rodimus::error that loading `j` throws ("" when it loads).
std::string load_error(const json& j) {
  try {
    (void)io::tokenizer::from_json(j, "bad.json");
  } catch (const error& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

void check_error(const json& j, std::initializer_list<const char*> parts) {
  const std::string m = load_error(j);
  INFO("message: " << m);
  REQUIRE(!m.empty());
  CHECK(has(m, "bad.json"));
  for (const char* p : parts)
    CHECK(has(m, p));
}

} // namespace

TEST_CASE("malformed tokenizer.json: errors name the JSON path and what was found") {
  REQUIRE(load_error(base()).empty());
  json j = base();
  j["model"]["type"] = "Unigram";
  check_error(j, {"model.type", "Unigram", "BPE"});

  j = base();
  j["model"].erase("vocab");
  check_error(j, {"model.vocab", "missing"});

  j = base();
  j["model"]["vocab"] = json::array();
  check_error(j, {"model.vocab", "array"});

  j = base();
  j["model"]["vocab"]["Ġ"] = "x";
  check_error(j, {"model.vocab['Ġ']"});

  j = base();
  j["model"]["merges"][3] = "Ġ"; // no space: not two tokens
  check_error(j, {"model.merges[3]"});

  j = base();
  j["model"]["merges"][5] = json::array({"Ġ", "not-a-token"});
  check_error(j, {"model.merges[5]", "not-a-token", "model.vocab"});

  j = base();
  j["model"]["merges"][7] = json::array({"z", "q"}); // both in the vocabulary, "zq" is not
  check_error(j, {"model.merges[7]", "zq"});

  j = base();
  j["model"]["merges"][2] = 17;
  check_error(j, {"model.merges[2]", "17"});

  j = base();
  j["model"].erase("merges");
  check_error(j, {"model.merges", "missing"});

  j = base();
  j["model"]["dropout"] = 0.1;
  check_error(j, {"model.dropout", "0.1"});

  j = base();
  j["model"]["byte_fallback"] = "yes";
  check_error(j, {"model.byte_fallback"});

  j = base();
  j["normalizer"] = json{{"type", "NFC"}};
  check_error(j, {"normalizer.type", "NFC"});

  j = base();
  j["pre_tokenizer"] = json{{"type", "Whitespace"}};
  check_error(j, {"pre_tokenizer.type", "Whitespace"});

  j = base();
  j["pre_tokenizer"] =
      json{{"type", "Sequence"},
           {"pretokenizers", json::array({json{{"type", "ByteLevel"}}, json{{"type", "Digits"}}})}};
  check_error(j, {"pre_tokenizer.pretokenizers[1]"});

  j = base();
  j["pre_tokenizer"] =
      json{{"type", "Split"}, {"pattern", json{{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  check_error(j, {"pre_tokenizer.pattern.Regex", "(unclosed"});

  j = base();
  j["pre_tokenizer"] =
      json{{"type", "Split"}, {"pattern", json{{"String", " "}}}, {"behavior", "Sideways"}};
  check_error(j, {"pre_tokenizer.behavior", "Sideways"});

  j = base();
  j["decoder"] = json{{"type", "WordPiece"}};
  check_error(j, {"decoder.type", "WordPiece"});

  j = base();
  j["post_processor"] = json{{"type", "RobertaProcessing"}};
  check_error(j, {"post_processor.type", "RobertaProcessing"});

  j = base();
  j["added_tokens"][0].erase("content");
  check_error(j, {"added_tokens[0].content", "missing"});

  j = base();
  j["added_tokens"][0]["id"] = -4;
  check_error(j, {"added_tokens[0].id", "-4"});

  j = base();
  j["truncation"] = json{{"max_length", 5}};
  check_error(j, {"truncation"});

  check_error(json::array(), {"top level"});

  try {
    (void)io::tokenizer::from_json_text("{\"model\": ", "half.json");
    FAIL("no error for truncated JSON");
  } catch (const error& e) {
    CHECK(has(e.what(), "half.json"));
    CHECK(has(e.what(), "not valid JSON"));
  }
  try {
    (void)io::tokenizer::from_file("/nonexistent/tokenizer.json");
    FAIL("no error for a missing file");
  } catch (const error& e) {
    CHECK(has(e.what(), "/nonexistent/tokenizer.json"));
  }
}

TEST_CASE("options that are honoured: ignore_merges, byte_fallback, unk_token, no decoder") {
  // A tiny hand-made vocabulary where every expected id follows from the merge rules by hand.
  const json j = json::parse(R"({
    "added_tokens": [], "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
    "model": {"type": "BPE", "unk_token": "?", "fuse_unk": true, "ignore_merges": false,
      "vocab": {"a": 0, "b": 1, "ab": 2, "abb": 3, "?": 4, "bb": 5, "<0xC3>": 6, "<0xA9>": 7},
      "merges": ["a b", ["ab", "b"], "b b"]}})");
  const auto t = io::tokenizer::from_json(j);
  CHECK(t.encode("ab") == std::vector<std::int32_t>{2});
  CHECK(t.encode("abbb") == std::vector<std::int32_t>{3, 1}); // a b first (rank 0), then ab b
  CHECK(t.encode("bbb") == std::vector<std::int32_t>{5, 1});  // leftmost pair first on equal rank
  CHECK(t.encode("axyb") == std::vector<std::int32_t>{0, 4, 1}); // x y unknown: one fused unk
  CHECK_THROWS_WITH_AS(t.decode({0}), doctest::Contains("no decoder"), error);

  json f = j;
  f["model"]["byte_fallback"] = true;
  CHECK(io::tokenizer::from_json(f).encode("aé") == std::vector<std::int32_t>{0, 6, 7});

  json m = j;
  m["model"]["vocab"]["bab"] = 8;
  CHECK(io::tokenizer::from_json(m).encode("bab") == std::vector<std::int32_t>{1, 2});
  m["model"]["ignore_merges"] = true;
  CHECK(io::tokenizer::from_json(m).encode("bab") == std::vector<std::int32_t>{8});
}

TEST_CASE("invalid UTF-8 text: a rodimus::error naming the byte, never a crash") {
  const char* bad[] = {"\xff",
                       "abc\xc3",
                       "ok \xe2\x82",
                       "\xed\xa0\x80 surrogate",
                       "\xc0\xaf overlong",
                       "x\xf4\x90\x80\x80 beyond U+10FFFF",
                       "\x80 lone continuation"};
  for (const char* s : bad) {
    INFO("case: " << io::utf8::to_valid_lossy(s));
    CHECK_THROWS_WITH_AS(tiny().encode(s), doctest::Contains("invalid UTF-8 at byte"), error);
  }
  CHECK_THROWS_WITH_AS(tiny().encode("abc\xc3"), doctest::Contains("byte 3"), error);
  // Random bytes: either valid UTF-8 (then it round-trips) or an error; nothing else.
  auto g = test::rng(21);
  int valid = 0, invalid = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string s(g() % 12, '\0');
    for (auto& c : s)
      c = char(g() % 4 == 0 ? 0x20 + g() % 0x60 : g() % 256);
    if (io::utf8::is_valid(s)) {
      ++valid;
      REQUIRE(tiny().decode(tiny().encode(s), false) == s);
    } else {
      ++invalid;
      REQUIRE_THROWS_AS(tiny().encode(s), error);
    }
  }
  CHECK(valid > 0);
  CHECK(invalid > 0);
}

TEST_CASE("decode: unknown ids are named") {
  CHECK_THROWS_WITH_AS(tiny().decode({5, 2048}), doctest::Contains("2048"), error);
  CHECK_THROWS_WITH_AS(tiny().decode({-1}), doctest::Contains("-1"), error);
  CHECK_THROWS_AS(tiny().token_id("no such token"), error);
  CHECK(!tiny().find_token_id("no such token").has_value());
}

TEST_CASE("rodimus tokenize: encode and decode JSONL through the binary, errors exit 1") {
  const std::string bin = test::binary_dir() + "/bin/rodimus";
  REQUIRE_MESSAGE(std::ifstream(bin).good(),
                  bin << " is missing: build the rodimus_tool target first");
  const std::string dir = test::binary_dir() + "/test_tokenizer_cli";
  REQUIRE(std::system(("mkdir -p '" + dir + "'").c_str()) == 0);
  const json golden = json::parse(read_text(test::data_dir() + "/tokenizer/tokenizer_golden.json"));

  {
    std::ofstream in(dir + "/in.jsonl");
    for (auto& c : golden["cases"])
      in << json{{"text", c["text"]}}.dump() << "\n";
    std::ofstream ids(dir + "/ids.jsonl");
    for (auto& c : golden["cases"])
      ids << json{{"ids", c["ids"]}}.dump() << "\n";
  }
  const std::string base_cmd = "'" + bin + "' tokenize --tokenizer '" + tokenizer_path() + "' ";
  REQUIRE(std::system((base_cmd + "--input '" + dir + "/in.jsonl' --output '" + dir + "/out.jsonl'")
                          .c_str()) == 0);
  REQUIRE(std::system((base_cmd + "--input '" + dir + "/ids.jsonl' --output '" + dir +
                       "/text.jsonl' --decode")
                          .c_str()) == 0);
  std::istringstream out(read_text(dir + "/out.jsonl")), text(read_text(dir + "/text.jsonl"));
  std::string line;
  std::size_t n = 0;
  for (auto& c : golden["cases"]) {
    REQUIRE(std::getline(out, line));
    CHECK(json::parse(line) == json{{"ids", c["ids"]}});
    REQUIRE(std::getline(text, line));
    CHECK(json::parse(line) == json{{"text", c["decoded"]}});
    ++n;
  }
  CHECK(!std::getline(out, line));
  CHECK(n == golden["cases"].size());

  // An id out of range: exit 1 and a message naming the line and the id.
  {
    std::ofstream bad(dir + "/bad.jsonl");
    bad << "{\"ids\": [1, 2]}\n{\"ids\": [3, 99999]}\n";
  }
  const std::string err = dir + "/err.txt";
  const int rc = std::system((base_cmd + "--input '" + dir + "/bad.jsonl' --output '" + dir +
                              "/x.jsonl' --decode 2>'" + err + "'")
                                 .c_str());
  CHECK(rc != 0);
  const std::string msg = read_text(err);
  CHECK(has(msg, "99999"));
  CHECK(has(msg, "bad.jsonl:2"));
}

// ---------------------------------------------------------------- hostile files (issue 15)

namespace {

/// The message of the rodimus::error that parsing `text` as tokenizer.json throws ("" if none).
std::string text_error(const std::string& text) {
  try {
    (void)io::tokenizer::from_json_text(text, "bad.json");
  } catch (const error& e) {
    return e.what();
  }
  return "";
}

} // namespace

TEST_CASE("tokenizer.json nested 200 KB deep is refused, not a stack overflow") {
  // Plain nlohmann parsing had no depth limit, and the merge's error message dumped the value
  // recursively: this file crashed `generate --prompt`.
  json j = base();
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::string text = j.dump();
  text.replace(text.find("\"merges\":[") + 10, 0, deep + ",");
  const std::string m = text_error(text);
  INFO("message: " << m.substr(0, 300));
  CHECK(has(m, "bad.json"));
  CHECK(has(m, "deeper than 64"));

  // A deep value handed over as a document is reported briefly, without recursing through it.
  nlohmann::json nested;
  nlohmann::json* inner = &nested;
  for (int i = 0; i < 100000; ++i) {
    inner->push_back(nullptr);
    inner = &(*inner)[0];
  }
  j["model"]["merges"][0] = std::move(nested);
  const std::string m2 = load_error(j);
  CHECK(has(m2, "model.merges[0]"));
  CHECK(m2.size() < 400);
}

TEST_CASE("tokenizer.json with a duplicate key is refused") {
  std::string text = base().dump();
  text.replace(text.find("\"model\":{") + 9, 0, "\"dropout\":null,\"dropout\":0,");
  CHECK(has(text_error(text), "duplicate key 'dropout'"));
}

TEST_CASE("tokenizer.json with a duplicate key at the top or inside the pre-tokenizer is refused") {
  // The same document without the duplicate loads: the error comes from the duplicate alone.
  json j = base();
  j["pre_tokenizer"] = json{{"type", "Split"},
                            {"pattern", {{"String", " "}}},
                            {"behavior", "Isolated"},
                            {"invert", false}};
  const std::string text = j.dump();
  REQUIRE(text_error(text).empty());

  std::string top = text; // a second "decoder" member at the top level
  top.replace(top.size() - 1, 0, ",\"decoder\":null");
  const std::string m1 = text_error(top);
  CHECK(has(m1, "bad.json"));
  CHECK(has(m1, "duplicate key 'decoder'"));

  std::string inner = text; // a second "String" in the Split step's pattern
  const std::size_t at = inner.find("\"String\":\" \"");
  REQUIRE(at != std::string::npos);
  inner.replace(at, 0, "\"String\":\"x\",");
  const std::string m2 = text_error(inner);
  CHECK(has(m2, "bad.json"));
  CHECK(has(m2, "duplicate key 'String'"));
}

TEST_CASE("vocabulary ids beyond what the file holds are refused before memory is taken") {
  // One id of 2^26 made a 2.1 GB table; 2^31 - 1 overflowed an int.
  for (std::int64_t id : {std::int64_t(1) << 26, std::int64_t(INT32_MAX)}) {
    json j = base();
    j["model"]["vocab"]["zz"] = id;
    const std::string m = load_error(j);
    INFO("message: " << m);
    CHECK(has(m, "model.vocab['zz']"));
    CHECK(has(m, std::to_string(id)));
    CHECK(has(m, "out of range"));
  }
  // The largest id the entries can fill is accepted (ids may leave holes for added tokens).
  json j = base();
  const std::size_t entries = j["model"]["vocab"].size() + 1;
  j["model"]["vocab"]["zz"] = entries + j["added_tokens"].size() - 1;
  CHECK(load_error(j) == "");
}

TEST_CASE("300 000 added tokens load in linear time") {
  // Each token was compared with every earlier one (40 000 took 2.1 s): 300 000 took minutes.
  json j = base();
  json& added = j["added_tokens"];
  added = json::array();
  constexpr int n = 300000;
  for (int i = 0; i < n; ++i)
    added.push_back(
        {{"id", 0}, {"content", "<extra_" + std::to_string(i) + ">"}, {"special", true}});
  const io::tokenizer t = io::tokenizer::from_json(j, "many.json");
  CHECK(t.added_tokens().size() == std::size_t(n));
  CHECK(t.encode("a<extra_299999>b", false).size() >= 3);
}

TEST_CASE("tokenizer files: missing, a folder, and regex failures are named plainly") {
  std::string m;
  try {
    (void)io::tokenizer::from_file("/nonexistent/tokenizer.json");
  } catch (const error& e) {
    m = e.what();
  }
  CHECK(has(m, "/nonexistent/tokenizer.json"));
  CHECK(has(m, "not found"));
  try {
    (void)io::tokenizer::from_file(test::source_dir() + "/examples");
  } catch (const error& e) {
    m = e.what();
  }
  CHECK(has(m, "is a directory"));
  CHECK(!has(m, "not valid JSON"));

  // A catastrophically backtracking Split pattern exceeds Oniguruma's retry limit: the message
  // says so in words, and names the pattern's JSON path.
  json j = base();
  j["pre_tokenizer"] = {{"type", "Split"},
                        {"pattern", {{"Regex", "(a|a?)+$"}}},
                        {"behavior", "Isolated"},
                        {"invert", false}};
  const io::tokenizer t = io::tokenizer::from_json(j, "regex.json");
  try {
    (void)t.encode(std::string(64, 'a') + "!", false);
    m = "";
  } catch (const error& e) {
    m = e.what();
  }
  INFO("message: " << m);
  CHECK(has(m, "pre_tokenizer.pattern.Regex"));
  CHECK(has(m, "retry-limit"));
}

TEST_CASE("a post_processor special token id outside the vocabulary is refused at load") {
  // Found by fuzz_tokenizer (its seed post_processor_id_outside_vocab.json): without added_tokens
  // the TemplateProcessing id 259 was emitted by encode although the vocabulary ends at 258.
  std::ifstream f(test::source_dir() +
                  "/tests/fuzz/seeds/tokenizer/post_processor_id_outside_vocab.json");
  REQUIRE(f.good());
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const std::string e = text_error(text);
  CHECK(e.find("post_processor") != std::string::npos);
  CHECK(e.find("259") != std::string::npos);
}
