// Hardening of checkpoint loading: malformed safetensors files and sharded-checkpoint indexes, made
// byte by byte here, must each throw rodimus::error whose message names the file and the problem;
// valid single-file and sharded checkpoints (and every golden checkpoint) open and read the same
// values.
#include "support/temp_dir.hpp"
#include "support/test_support.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "rodimus/io/checkpoint.hpp"

using namespace rodimus;
namespace fs = std::filesystem;
using test::expect_error;
using test::temp_dir;

namespace {

using bytes = std::vector<unsigned char>;

/// u64 little-endian `n`, then `rest`.
bytes with_length(std::uint64_t n, const std::string& rest) {
  bytes b;
  b.reserve(8 + rest.size());
  for (int i = 0; i < 8; ++i)
    b.push_back(static_cast<unsigned char>(n >> (8 * i)));
  for (char c : rest)
    b.push_back(static_cast<unsigned char>(c));
  return b;
}

/// A safetensors file with header `header` and `data` bytes of data (values 1, 2, 3, ...).
bytes st(const std::string& header, std::size_t data) {
  bytes b = with_length(header.size(), header);
  for (std::size_t i = 0; i < data; ++i)
    b.push_back(static_cast<unsigned char>(i + 1));
  return b;
}

/// One tensor entry of a header.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":" + dtype + ",\"shape\":" + shape +
         ",\"data_offsets\":" + offsets + "}";
}

void expect_bad_bytes(const bytes& b, const std::vector<std::string>& words) {
  std::vector<std::string> all = words;
  all.push_back("case.safetensors");
  expect_error(
      [&] { (void)io::safetensors_file::from_bytes(b.data(), b.size(), "case.safetensors"); }, all);
}

/// A valid shard holding F32 tensors of 2 elements each, named as given.
bytes shard_of(const std::vector<std::string>& names) {
  std::string h = "{";
  std::size_t off = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) h += ",";
    h += entry(names[i], "\"F32\"", "[2]",
               "[" + std::to_string(off) + "," + std::to_string(off + 8) + "]");
    off += 8;
  }
  return st(h + "}", off);
}

} // namespace

TEST_CASE("truncated safetensors files: 0..7 bytes, header cut short, data cut short") {
  for (std::size_t n = 0; n < 8; ++n) {
    INFO("file of " << n << " bytes");
    bytes b(n, 0);
    if (n > 0) b[0] = 2;
    expect_bad_bytes(b, {"too short", std::to_string(n) + " bytes"});
  }
  // The header claims 100 bytes, 20 follow.
  expect_bad_bytes(with_length(100, "{\"a\":{\"dtype\":\"F32\""),
                   {"header length 100", "past the end"});
  // A valid file with the last 4 data bytes cut off.
  bytes full = st("{" + entry("w", "\"F32\"", "[4]", "[0,16]") + "}", 16);
  full.resize(full.size() - 4);
  expect_bad_bytes(full, {"'w'", "data_offsets", "outside the data section"});
}

TEST_CASE("header length of 2^64-1 and beyond 100 MB") {
  expect_bad_bytes(with_length(~std::uint64_t(0), "{}"), {"18446744073709551615", "100 MB"});
  expect_bad_bytes(with_length(100000001, "{}"), {"100000001", "100 MB"});
  // Within the limit but beyond the file.
  expect_bad_bytes(with_length(99999999, "{}"), {"99999999", "past the end"});
}

TEST_CASE("header that is not a JSON object") {
  expect_bad_bytes(st("{not json", 0), {"not valid JSON"});
  expect_bad_bytes(st("[1, 2, 3]", 0), {"not a JSON object"});
  expect_bad_bytes(st("42", 0), {"not a JSON object"});
  expect_bad_bytes(st("\"text\"", 0), {"not a JSON object"});
  expect_bad_bytes(st("null", 0), {"not a JSON object"});
  expect_bad_bytes(st("{} trailing", 0), {"not valid JSON"});
  expect_bad_bytes(st("", 0), {"not valid JSON"});
  expect_bad_bytes(st(std::string("{\"a\x00\":1}", 9), 0), {"not valid JSON"});
  expect_bad_bytes(st("{\"\xff\xfe\":{}}", 0), {"not valid JSON"}); // invalid UTF-8
  std::string deep(100, '[');
  expect_bad_bytes(st("{\"w\":" + deep + std::string(100, ']') + "}", 0), {"deeper"});
}

TEST_CASE("duplicate names and duplicate keys inside an entry") {
  const std::string w = entry("w", "\"F32\"", "[1]", "[0,4]");
  expect_bad_bytes(st("{" + w + "," + w + "}", 4), {"duplicate tensor name", "'w'"});
  expect_bad_bytes(
      st("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
      {"duplicate key", "'dtype'"});
  expect_bad_bytes(st("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0), {"duplicate key", "'k'"});
}

TEST_CASE("unknown or malformed dtype") {
  for (const char* dt : {"F8_E4M3", "BOOL", "U16", "I8", "u8", "f32", ""}) {
    INFO("dtype " << dt);
    expect_bad_bytes(st("{" + entry("w", std::string("\"") + dt + "\"", "[1]", "[0,4]") + "}", 4),
                     {"'w'", "dtype", std::string("'") + dt + "'"});
  }
  expect_bad_bytes(st("{" + entry("w", "5", "[1]", "[0,4]") + "}", 4),
                   {"'w'", "dtype", "not a string"});
  // U8 (raw bytes: quantised blocks, model/quant_file.hpp) is read; its size is checked like any.
  expect_bad_bytes(st("{" + entry("w", "\"U8\"", "[3]", "[0,4]") + "}", 4),
                   {"'w'", "shape [3] x U8 is 3 bytes but data_offsets span 4"});
  const bytes u8 = st("{" + entry("w", "\"U8\"", "[2, 2]", "[0,4]") + "}", 4);
  const auto f = io::safetensors_file::from_bytes(u8.data(), u8.size());
  CHECK(f.at("w").type == dtype::u8);
  CHECK(f.read<std::int64_t>("w") == std::vector<std::int64_t>{1, 2, 3, 4});
  expect_bad_bytes(st("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                   {"'w'", "missing", "dtype"});
}

TEST_CASE("shape entries that are negative, float, string, or not an array") {
  for (const char* shape : {"[-1]", "[2.5]", "[2.0]", "[\"2\"]", "[[2]]", "[null]", "[true]"}) {
    INFO("shape " << shape);
    expect_bad_bytes(st("{" + entry("w", "\"F32\"", shape, "[0,8]") + "}", 8), {"'w'", "shape"});
  }
  expect_bad_bytes(st("{" + entry("w", "\"F32\"", "4", "[0,16]") + "}", 16),
                   {"'w'", "shape", "not an array"});
  expect_bad_bytes(st("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4),
                   {"'w'", "missing", "shape"});
  expect_bad_bytes(st("{\"w\":7}", 0), {"'w'", "not a JSON object"});
}

TEST_CASE("shape x dtype that does not match the byte length") {
  expect_bad_bytes(st("{" + entry("w", "\"F32\"", "[3]", "[0,8]") + "}", 8),
                   {"'w'", "[3]", "12 bytes", "span 8"});
  expect_bad_bytes(st("{" + entry("w", "\"BF16\"", "[2, 2]", "[0,16]") + "}", 16),
                   {"'w'", "8 bytes", "span 16"});
  expect_bad_bytes(st("{" + entry("w", "\"F64\"", "[]", "[0,4]") + "}", 4),
                   {"'w'", "8 bytes", "span 4"});
}

TEST_CASE("shape products overflowing 2^64 or int64") {
  // 2^32 * 2^32 * 2 elements: the element count overflows 2^64.
  expect_bad_bytes(st("{" + entry("w", "\"F32\"", "[4294967296, 4294967296, 2]", "[0,8]") + "}", 8),
                   {"'w'", "overflows"});
  // 2^62 * 2 overflows int64 before the zero dimension.
  expect_bad_bytes(st("{" + entry("w", "\"F32\"", "[4611686018427387904, 2, 0]", "[0,0]") + "}", 0),
                   {"'w'", "overflows"});
  // One dimension of 2^64-1.
  expect_bad_bytes(st("{" + entry("w", "\"F32\"", "[18446744073709551615]", "[0,8]") + "}", 8),
                   {"'w'", "overflows"});
  // 2^62 F32 elements: the count fits, the byte size (2^64) does not.
  expect_bad_bytes(st("{" + entry("w", "\"F32\"", "[4611686018427387904]", "[0,8]") + "}", 8),
                   {"'w'", "byte size", "overflows"});
}

TEST_CASE("data_offsets that are not two non-negative integers") {
  for (const char* off : {"[0]", "[0,4,8]", "[0.0,4]", "[\"0\",\"4\"]", "[-1,3]", "4", "null", "[]",
                          "[0,18446744073709551616]"}) {
    INFO("data_offsets " << off);
    expect_bad_bytes(st("{" + entry("w", "\"F32\"", "[1]", off) + "}", 4), {"'w'", "data_offsets"});
  }
  expect_bad_bytes(st("{" + entry("w", "\"F32\"", "[0]", "[8,4]") + "}", 8),
                   {"'w'", "begin 8 > end 4"});
}

TEST_CASE("offsets overlapping, outside the data, with a gap, or with trailing bytes") {
  const std::string a = entry("a", "\"F32\"", "[2]", "[0,8]");
  expect_bad_bytes(st("{" + a + "," + entry("b", "\"F32\"", "[2]", "[4,12]") + "}", 12),
                   {"'b'", "overlaps"});
  expect_bad_bytes(st("{" + a + "," + entry("b", "\"F32\"", "[2]", "[0,8]") + "}", 8),
                   {"overlaps"});
  expect_bad_bytes(st("{" + entry("w", "\"F32\"", "[2]", "[0,8]") + "}", 4),
                   {"'w'", "outside the data section", "4 bytes"});
  expect_bad_bytes(st("{" + entry("w", "\"F32\"", "[1]", "[1000000,1000004]") + "}", 4),
                   {"'w'", "outside the data section"});
  expect_bad_bytes(st("{" + entry("a", "\"F32\"", "[1]", "[0,4]") + "," +
                          entry("b", "\"F32\"", "[1]", "[8,12]") + "}",
                      12),
                   {"gap", "'b'", "4..8"});
  expect_bad_bytes(st("{" + entry("w", "\"F32\"", "[1]", "[4,8]") + "}", 8), {"gap", "'w'"});
  expect_bad_bytes(st("{" + entry("w", "\"F32\"", "[1]", "[0,4]") + "}", 8), {"4 trailing bytes"});
  expect_bad_bytes(st("{}", 3), {"3 trailing bytes"});
}

TEST_CASE("__metadata__ that is not an object of strings") {
  expect_bad_bytes(st("{\"__metadata__\":\"pt\"}", 0), {"__metadata__", "not a JSON object"});
  expect_bad_bytes(st("{\"__metadata__\":[\"pt\"]}", 0), {"__metadata__", "not a JSON object"});
  expect_bad_bytes(st("{\"__metadata__\":{\"format\":1}}", 0),
                   {"__metadata__", "'format'", "not a string"});
  expect_bad_bytes(st("{\"__metadata__\":{\"format\":{\"a\":\"b\"}}}", 0),
                   {"__metadata__", "'format'"});
}

TEST_CASE("malformed files on disk are named by path") {
  temp_dir d;
  d.write("short.safetensors", bytes{1, 2, 3});
  expect_error([&] { (void)io::safetensors_file::open(d.file("short.safetensors")); },
               {d.file("short.safetensors"), "too short"});
  d.write("empty.safetensors", bytes{});
  expect_error([&] { (void)io::safetensors_file::open(d.file("empty.safetensors")); },
               {d.file("empty.safetensors"), "too short", "0 bytes"});
  expect_error([&] { (void)io::safetensors_file::open(d.file("absent.safetensors")); },
               {d.file("absent.safetensors"), "cannot open"});
  expect_error([&] { (void)io::safetensors_file::open(d.str()); }, {d.str(), "not a regular file"});
  // A FIFO must be rejected at once, not block waiting for a writer (opened non-blocking, then
  // refused by fstat); the checkpoint loader meets it as model.safetensors.
  REQUIRE(::mkfifo(d.file("model.safetensors").c_str(), 0600) == 0);
  expect_error([&] { (void)io::safetensors_file::open(d.file("model.safetensors")); },
               {d.file("model.safetensors"), "not a regular file"});
  expect_error([&] { (void)io::checkpoint::open(d.str()); },
               {d.file("model.safetensors"), "not a regular file"});
}

// ---------------------------------------------------------------- hostile sizes (issue 15)

TEST_CASE("a header of 400 000 entries parses in linear time") {
  // nlohmann's callback parser, used before, rescanned the whole header at the end of every entry:
  // 2.9 MB took 16-38 s, so this 25 MB header would take about an hour (the test would time out).
  constexpr int n = 400000;
  std::string h = "{";
  for (int i = 0; i < n; ++i)
    h += (i ? "," : "") + entry("t" + std::to_string(i), "\"F32\"", "[0, 7]", "[0,0]");
  const bytes b = st(h + "}", 0);
  const auto f = io::safetensors_file::from_bytes(b.data(), b.size(), "big.safetensors");
  CHECK(f.tensors().size() == std::size_t(n));
  REQUIRE(f.find("t399999") != nullptr);
  CHECK(f.at("t399999").shape == std::vector<std::int64_t>{0, 7});
}

TEST_CASE("config.json, indexes and tokenizer.json share a parser that is linear in objects") {
  // The same quadratic rescan hit every object ending inside a large container: an array of
  // 400 000 objects (the shape of tokenizer.json's added_tokens) took about an hour.
  constexpr int n = 400000;
  std::string text = "[";
  for (int i = 0; i < n; ++i)
    text += i ? ",{\"id\":" + std::to_string(i) + "}" : "{\"id\":0}";
  text += "]";
  const nlohmann::json j =
      io::detail::parse_json_strict(text.data(), text.data() + text.size(), "x.json", "list", 8);
  REQUIRE(j.size() == std::size_t(n));
  CHECK(j[n - 1]["id"] == n - 1);
}

TEST_CASE("a header nested 200 KB deep is refused without recursion or memory") {
  const std::string deep(100000, '[');
  expect_bad_bytes(st("{\"w\":" + deep + std::string(100000, ']') + "}", 0), {"deeper", "8"});
  expect_bad_bytes(st(deep + std::string(100000, ']'), 0), {"not a JSON object"});
  const std::string objects = [] {
    std::string o;
    for (int i = 0; i < 100000; ++i)
      o += "{\"a\":";
    return o;
  }();
  expect_bad_bytes(st("{\"w\":" + objects + "1" + std::string(100000, '}') + "}", 0), {"deeper"});
}

TEST_CASE("one header entry may not hold millions of JSON values") {
  // A 100 MB header of small nested arrays took 3.4 GB: each entry is now checked as soon as it is
  // parsed and dropped, and may hold at most 2^20 values, so memory stays in proportion.
  std::string many = "[";
  for (int i = 0; i < (1 << 20) + 10; ++i)
    many += i ? ",[]" : "[]";
  many += "]";
  expect_bad_bytes(st("{\"w\":{\"dtype\":\"F32\",\"shape\":" + many + "}}", 0),
                   {"tensor name 'w'", "more than 1048576 JSON values"});
  expect_bad_bytes(st("{\"__metadata__\":" + many + "}", 0), {"'__metadata__'", "more than"});
}

TEST_CASE("messages quoting a hostile file stay short") {
  const std::string name(1 << 20, 'n'); // a 1 MB tensor name
  std::string message;
  try {
    const bytes b = st("{" + entry(name, "\"F33\"", "[1]", "[0,4]") + "}", 4);
    (void)io::safetensors_file::from_bytes(b.data(), b.size(), "long.safetensors");
  } catch (const error& e) {
    message = e.what();
  }
  CHECK(message.find("unsupported dtype") != std::string::npos);
  CHECK(message.size() < 1000);
  const std::string dup = "{\"" + name + "\":1,\"" + name + "\":2}";
  try {
    (void)io::detail::parse_json_strict(dup.data(), dup.data() + dup.size(), "d.json", "doc", 8);
  } catch (const error& e) {
    message = e.what();
  }
  CHECK(message.find("duplicate") != std::string::npos);
  CHECK(message.size() < 1000);
  // Every rodimus::error is bounded, whatever its maker put in it.
  const error big(std::string(100u << 20, 'x'));
  CHECK(std::string(big.what()).size() < max_error_message_bytes + 100);
  CHECK(std::string(big.what()).find("more bytes of this message left out") != std::string::npos);
  // A brief rendering of a huge or deeply nested JSON value is short, and does not recurse deep.
  nlohmann::json deep;
  nlohmann::json* inner = &deep;
  for (int i = 0; i < 100000; ++i) {
    inner->push_back(nullptr);
    inner = &(*inner)[0];
  }
  CHECK(io::detail::brief_json(deep).size() <= 80);
  CHECK(io::detail::brief_json(nlohmann::json(std::string(1 << 20, 's'))).size() <= 80);
}

TEST_CASE("valid edge cases parse: empty header, zero-size tensors, scalars, metadata, padding") {
  const std::string h =
      "{\"__metadata__\":{\"format\":\"pt\"}," + entry("z", "\"F32\"", "[0, 5]", "[0,0]") + "," +
      entry("s", "\"F64\"", "[]", "[0,8]") + "," + entry("e", "\"I64\"", "[0]", "[8,8]") + "}    ";
  const bytes b = st(h, 8);
  const auto f = io::safetensors_file::from_bytes(b.data(), b.size());
  CHECK(f.tensors().size() == 3);
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.at("z").numel() == 0);
  CHECK(f.at("s").numel() == 1);
  CHECK(f.read<double>("z").empty());
  CHECK(f.read<double>("s").size() == 1);
  const bytes empty = st("{}", 0);
  CHECK(io::safetensors_file::from_bytes(empty.data(), empty.size()).tensors().empty());
}

TEST_CASE("writer round trip with random values, and writer errors") {
  auto g = test::rng(7);
  const auto a = test::uniform<float>(g, 6);
  const auto b = test::uniform<double>(g, 3);
  std::vector<std::uint16_t> c(4);
  for (std::size_t i = 0; i < c.size(); ++i)
    c[i] = bf16::from_float(float(test::uniform<float>(g, 1)[0]));
  std::vector<std::int64_t> ids = {std::int64_t(g() >> 1), -3, 0, 7};
  const auto out = io::to_safetensors_bytes({{"a", dtype::f32, {2, 3}, a.data()},
                                             {"b", dtype::f64, {3}, b.data()},
                                             {"c", dtype::bf16, {2, 2}, c.data()},
                                             {"ids", dtype::i64, {4}, ids.data()},
                                             {"none", dtype::f32, {0, 3}, nullptr}});
  const auto f = io::safetensors_file::from_bytes(out.data(), out.size());
  CHECK(f.read<float>("a") == a);
  CHECK(f.read<double>("b") == b);
  const auto cf = f.read<float>("c");
  for (std::size_t i = 0; i < c.size(); ++i)
    CHECK(cf[i] == bf16::to_float(c[i]));
  CHECK(f.read<std::int64_t>("ids") == ids);
  CHECK(f.at("none").numel() == 0);
  expect_error([&] { (void)f.read<std::int64_t>("a"); }, {"'a'", "dtype", "integer"});
  expect_error([&] { (void)f.read<float>("ids"); }, {"'ids'", "dtype", "floating-point"});
  expect_error([&] { (void)f.at("missing"); }, {"'missing'"});

  // f64 values beyond float's range read as +-inf (no undefined conversion).
  const std::vector<double> huge = {1e300, -1e300, 3.0};
  const auto hb = io::to_safetensors_bytes({{"h", dtype::f64, {3}, huge.data()}});
  const auto hf = io::safetensors_file::from_bytes(hb.data(), hb.size()).read<float>("h");
  CHECK(std::isinf(hf[0]));
  CHECK(hf[0] > 0);
  CHECK(std::isinf(hf[1]));
  CHECK(hf[1] < 0);
  CHECK(hf[2] == 3.0f);

  expect_error(
      [&] {
        (void)io::to_safetensors_bytes(
            {{"x", dtype::f32, {1}, a.data()}, {"x", dtype::f32, {1}, a.data()}});
      },
      {"'x'", "duplicate"});
  expect_error(
      [&] {
        (void)io::to_safetensors_bytes({{"x", dtype::f32, {-1}, a.data()}});
      },
      {"'x'", "shape"});
  expect_error(
      [&] {
        (void)io::to_safetensors_bytes({{"__metadata__", dtype::f32, {1}, a.data()}});
      },
      {"reserved"});
  // Null bytes are fine for an empty tensor (above), an error for a non-empty one.
  expect_error(
      [&] {
        (void)io::to_safetensors_bytes({{"x", dtype::f32, {2}, nullptr}});
      },
      {"'x'", "null", "8 bytes"});
}

// ---------------------------------------------------------------- sharded checkpoints

TEST_CASE("checkpoint index files that are malformed") {
  const std::string idx = "model.safetensors.index.json";
  auto check_index = [&](const std::string& index_text, const std::vector<std::string>& words,
                         const std::function<void(const temp_dir&)>& extra = {}) {
    temp_dir d;
    d.write("a.safetensors", shard_of({"x", "y"}));
    d.write("b.safetensors", shard_of({"z"}));
    d.write(idx, index_text);
    if (extra) extra(d);
    std::vector<std::string> all = words;
    all.push_back(d.file(idx));
    expect_error([&] { (void)io::checkpoint::open(d.str()); }, all);
  };
  const std::string good_map = R"("x":"a.safetensors","y":"a.safetensors","z":"b.safetensors")";
  // The good index itself opens (so every failure below is due to the change it makes).
  {
    temp_dir d;
    d.write("a.safetensors", shard_of({"x", "y"}));
    d.write("b.safetensors", shard_of({"z"}));
    d.write(idx, "{\"metadata\":{\"total_size\":24},\"weight_map\":{" + good_map + "}}");
    const auto c = io::checkpoint::open(d.str());
    CHECK(c.names() == std::vector<std::string>{"x", "y", "z"});
    CHECK(c.files().size() == 2);
  }
  check_index("{\"weight_map\":", {"not valid JSON"});
  check_index("", {"not valid JSON"});
  check_index("[1,2]", {"not a JSON object"});
  check_index("{\"metadata\":{}}", {"missing", "weight_map"});
  check_index("{\"weight_map\":[\"a.safetensors\"]}", {"weight_map", "not a JSON object"});
  check_index("{\"weight_map\":{}}", {"weight_map", "empty"});
  check_index("{\"weight_map\":{\"x\":1}}", {"'x'", "not a string"});
  check_index("{\"metadata\":5,\"weight_map\":{" + good_map + "}}",
              {"metadata", "not a JSON object"});
  check_index("{\"weight_map\":{" + good_map + ",\"x\":\"a.safetensors\"}}",
              {"duplicate key", "'x'"});
  check_index("{\"weight_map\":{" + good_map + "},\"weight_map\":{}}",
              {"duplicate key", "'weight_map'"});
  // A shard that does not exist.
  check_index(R"({"weight_map":{"x":"a.safetensors","y":"a.safetensors","z":"c.safetensors"}})",
              {"'c.safetensors'", "does not exist"});
  // A tensor in the wrong shard (the other shard is then not opened at all).
  check_index(R"({"weight_map":{"x":"a.safetensors","y":"a.safetensors","z":"a.safetensors"}})",
              {"'z'", "not in shard 'a.safetensors'"});
  // A tensor in the wrong shard, the shard it is in being named too.
  check_index(R"({"weight_map":{"x":"b.safetensors","y":"a.safetensors","z":"b.safetensors"}})",
              {"'x'", "not in shard 'b.safetensors'", "it is in shard 'a.safetensors'"});
  // A tensor the map does not name.
  check_index(R"({"weight_map":{"x":"a.safetensors","z":"b.safetensors"}})",
              {"'y'", "does not name"});
  // A tensor the map names that is in no shard.
  check_index("{\"weight_map\":{" + good_map + ",\"q\":\"b.safetensors\"}}",
              {"'q'", "not in shard"});
  // The same tensor in two shards.
  check_index("{\"weight_map\":{" + good_map + "}}", {"'x'", "duplicate tensor across shards"},
              [](const temp_dir& d) {
                d.write("b.safetensors", shard_of({"z", "x"}));
              });
  // Path traversal and other non-plain shard names.
  for (const char* bad :
       {"../a.safetensors", "/etc/passwd", "sub/a.safetensors", "..", "a\\\\b", ""}) {
    INFO("shard name " << bad);
    check_index(std::string(R"({"weight_map":{"x":")") + bad +
                    R"(","y":"a.safetensors","z":"b.safetensors"}})",
                {"'x'", "shard file name"});
  }
  // A malformed shard is named by its path.
  {
    temp_dir d;
    d.write("a.safetensors", shard_of({"x", "y"}));
    d.write("b.safetensors", bytes{1, 2, 3});
    d.write(idx, "{\"weight_map\":{" + good_map + "}}");
    expect_error([&] { (void)io::checkpoint::open(d.str()); },
                 {d.file("b.safetensors"), "too short"});
  }
}

TEST_CASE("a checkpoint index that is a folder or a FIFO is refused at once, not read") {
  const std::string idx = "model.safetensors.index.json";
  {
    temp_dir d;
    fs::create_directory(d.path / idx);
    expect_error([&] { (void)io::checkpoint::open(d.str()); }, {d.file(idx), "not a regular file"});
  }
  {
    temp_dir d;
    REQUIRE(::mkfifo(d.file(idx).c_str(), 0600) == 0);
    expect_error([&] { (void)io::checkpoint::open(d.str()); }, {d.file(idx), "not a regular file"});
  }
}

TEST_CASE("checkpoint folders without a checkpoint, or with a malformed single file") {
  temp_dir d;
  expect_error([&] { (void)io::checkpoint::open(d.str()); },
               {d.str(), "model.safetensors", "model.safetensors.index.json", "neither"});
  expect_error([&] { (void)io::checkpoint::open(d.file("absent")); }, {"absent", "neither"});
  d.write("model.safetensors", st("{" + entry("w", "\"F32\"", "[3]", "[0,8]") + "}", 8));
  expect_error([&] { (void)io::checkpoint::open(d.str()); }, {d.file("model.safetensors"), "'w'"});
}

TEST_CASE("a sharded checkpoint reads the same values as the single file") {
  const std::string src = test::golden_dir() + "/rodimus_tiny";
  const auto single = io::checkpoint::open(src);
  const auto names = single.names();
  REQUIRE(names.size() > 3);

  // Split the tensors over three shards, in a random assignment.
  auto g = test::rng(11);
  temp_dir d;
  std::vector<std::vector<io::tensor_to_write>> shards(3);
  nlohmann::json map = nlohmann::json::object();
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto& t = single.at(names[i]);
    const std::size_t s = i < 3 ? i : std::size_t(g() % 3);
    shards[s].push_back({t.name, t.type, t.shape, t.bytes});
    map[t.name] = "model-0000" + std::to_string(s + 1) + "-of-00003.safetensors";
  }
  for (std::size_t s = 0; s < 3; ++s)
    io::write_safetensors(d.file("model-0000" + std::to_string(s + 1) + "-of-00003.safetensors"),
                          shards[s]);
  d.write("model.safetensors.index.json",
          nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", map}}.dump());

  const auto sharded = io::checkpoint::open(d.str() + "/");
  CHECK(sharded.dir() == d.str() + "/");
  CHECK(sharded.files().size() == 3);
  REQUIRE(sharded.names() == names);
  for (const auto& n : names) {
    INFO("tensor " << n);
    const auto& a = single.at(n);
    const auto& b = sharded.at(n);
    CHECK(a.type == b.type);
    CHECK(a.shape == b.shape);
    const auto va = single.read<float>(n);
    const auto vb = sharded.read<float>(n);
    CHECK(test::max_abs(va) > 0); // not all zeros
    CHECK(va == vb);
    CHECK(std::memcmp(a.bytes, b.bytes, a.end - a.begin) == 0);
  }
  CHECK(sharded.find("nonexistent") == nullptr);
  expect_error([&] { (void)sharded.at("nonexistent"); }, {d.str(), "'nonexistent'"});
  expect_error([&] { (void)sharded.read<float>("nonexistent"); }, {d.str(), "'nonexistent'"});
}

TEST_CASE("every golden checkpoint and fixture opens, and every tensor reads") {
  int opened = 0;
  for (const auto& e : fs::directory_iterator(test::golden_dir())) {
    if (!e.is_directory()) continue;
    INFO("checkpoint " << e.path().string());
    const auto c = io::checkpoint::open(e.path().string());
    CHECK(c.size() > 0);
    CHECK(c.find("model.embeddings.weight") != nullptr);
    for (const auto& n : c.names()) {
      const auto v = c.read<double>(n);
      CHECK(v.size() == std::size_t(c.at(n).numel()));
    }
    ++opened;
  }
  CHECK(opened == 6);
  for (const char* f : {"primitives.safetensors", "rodimus_tiny/expected.safetensors"}) {
    const auto s = test::open_golden(f);
    CHECK(!s.tensors().empty());
  }
}
