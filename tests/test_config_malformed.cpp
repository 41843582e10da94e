// Hardening of config.json loading: malformed files, written to a temporary checkpoint folder and
// read with io::load_config, must each throw rodimus::error naming the file and the key at fault.
#include <sys/stat.h>

#include "support/temp_dir.hpp"
#include "support/test_support.hpp"

#include <functional>
#include <string>
#include <vector>

#include "rodimus/io/config.hpp"

using namespace rodimus;
using nlohmann::json;

namespace {

// A valid rodimus_plus configuration every case below breaks in one place.
json plus_base() {
  return json{
      {"model_type", "rodimus"},
      {"block_type", "rodimus_plus"},
      {"d_model", 256},
      {"n_layer", 2},
      {"vocab_size", 1000},
      {"norm_epsilon", 1e-5},
      {"mixer_cfg", {{"expand_ratio", 2.0}, {"input_gate_low_rank", "auto"}, {"mem_size", 64}}},
      {"attn_cfg",
       {{"ffn_expand_ratio", 2.0},
        {"num_heads", 4},
        {"num_heads_k", 1},
        {"num_heads_v", 2},
        {"window_size", 64}}}};
}

/// Write `text` as config.json, load it, and CHECK the error names the file and every word.
void expect_config_error(const std::string& text, const std::vector<std::string>& words) {
  test::temp_dir d;
  d.write("config.json", text);
  INFO("config.json: " << text);
  std::vector<std::string> all = words;
  all.push_back(d.file("config.json"));
  test::expect_error([&] { (void)io::load_config(d.str()); }, all);
}

/// plus_base() with `edit` applied.
std::string edited(const std::function<void(json&)>& edit) {
  json j = plus_base();
  edit(j);
  return j.dump();
}

} // namespace

TEST_CASE("the base configuration of the malformed cases is valid") {
  test::temp_dir d;
  d.write("config.json", plus_base().dump());
  const model_config c = io::load_config(d.str());
  const json j = plus_base();
  CHECK(c.is_plus());
  CHECK(c.d_model == j["d_model"].get<std::int64_t>());
  CHECK(c.num_heads == j["attn_cfg"]["num_heads"].get<std::int64_t>());
  CHECK(c.mem_size == j["mixer_cfg"]["mem_size"].get<std::int64_t>());
}

TEST_CASE("config.json that is not a JSON object") {
  expect_config_error("{\"model_type\": \"rodimus\",", {"JSON"});
  expect_config_error("", {"JSON"});
  expect_config_error("[1, 2]", {"object"});
  expect_config_error("42", {"object"});
  expect_config_error("\"rodimus\"", {"object"});
  expect_config_error("null", {"object"});
}

TEST_CASE("config.json with a duplicate key, or nested absurdly deep") {
  // nlohmann alone would keep the last d_model silently.
  expect_config_error("{\"model_type\": \"rodimus\", \"d_model\": 64, \"d_model\": 128}",
                      {"duplicate", "d_model"});
  expect_config_error("{\"mixer_cfg\": {\"mem_size\": 8, \"mem_size\": 16}}",
                      {"duplicate", "mem_size"});
  expect_config_error(std::string(40, '[') + std::string(40, ']'), {"deeper"});
}

TEST_CASE("config.json that is not a regular file") {
  test::temp_dir d;
  const std::string fifo = d.file("config.json");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(io::load_config(d.str()), doctest::Contains("not a regular file"),
                       rodimus::error);
}

TEST_CASE("model_type and block_type") {
  expect_config_error(edited([](json& j) { j.erase("model_type"); }), {"'model_type'"});
  expect_config_error(edited([](json& j) { j["model_type"] = "llama"; }),
                      {"'model_type'", "llama"});
  expect_config_error(edited([](json& j) { j["model_type"] = 1; }), {"'model_type'"});
  expect_config_error(edited([](json& j) { j["block_type"] = "mamba"; }),
                      {"'block_type'", "mamba"});
  expect_config_error(edited([](json& j) { j["block_type"] = 2; }), {"'block_type'"});
}

TEST_CASE("sizes that are negative, zero, strings or fractional") {
  for (const json& bad :
       {json(-128), json(0), json("256"), json(256.5), json(true), json::array({256})}) {
    INFO("d_model = " << bad.dump());
    expect_config_error(edited([&](json& j) { j["d_model"] = bad; }), {"'d_model'"});
  }
  expect_config_error(edited([](json& j) { j["n_layer"] = 0; }), {"'n_layer'"});
  expect_config_error(edited([](json& j) { j["n_layer"] = -1; }), {"'n_layer'"});
  expect_config_error(edited([](json& j) { j["vocab_size"] = 0; }), {"'vocab_size'"});
  expect_config_error(edited([](json& j) { j["mixer_cfg"]["mem_size"] = 0; }),
                      {"'mixer_cfg.mem_size'"});
  expect_config_error(edited([](json& j) { j["mixer_cfg"]["mem_size"] = "64"; }),
                      {"'mixer_cfg.mem_size'"});
  expect_config_error(edited([](json& j) { j["mixer_cfg"]["d_conv"] = 0; }),
                      {"'mixer_cfg.d_conv'"});
}

TEST_CASE("ratios and epsilons that are negative, zero or not numbers") {
  for (const json& bad : {json(-2.0), json(0.0), json("2")}) {
    INFO("expand_ratio = " << bad.dump());
    expect_config_error(edited([&](json& j) { j["mixer_cfg"]["expand_ratio"] = bad; }),
                        {"'mixer_cfg.expand_ratio'"});
  }
  expect_config_error(edited([](json& j) { j["mixer_cfg"]["expand_ratio"] = 0.001; }), // d_inner 0
                      {"expand_ratio"});
  expect_config_error(edited([](json& j) { j["attn_cfg"]["ffn_expand_ratio"] = -1.0; }),
                      {"'attn_cfg.ffn_expand_ratio'"});
  expect_config_error(edited([](json& j) { j["norm_epsilon"] = -1e-5; }), {"'norm_epsilon'"});
  expect_config_error(edited([](json& j) { j["norm_epsilon"] = 0; }), {"'norm_epsilon'"});
  expect_config_error(edited([](json& j) { j["norm_epsilon"] = "1e-5"; }), {"'norm_epsilon'"});
  expect_config_error(edited([](json& j) { j["mixer_cfg"]["normalize_epsilon"] = -1.0; }),
                      {"'mixer_cfg.normalize_epsilon'"});
}

TEST_CASE("attention heads and window") {
  expect_config_error(edited([](json& j) { j["attn_cfg"]["num_heads"] = 3; }), // 256 % 3 != 0
                      {"'attn_cfg.num_heads'", "3"});
  expect_config_error(edited([](json& j) { j["attn_cfg"]["num_heads"] = 0; }),
                      {"'attn_cfg.num_heads'"});
  expect_config_error(edited([](json& j) { j["attn_cfg"].erase("num_heads_k"); }),
                      {"'attn_cfg.num_heads_k'"});
  expect_config_error(edited([](json& j) { j["attn_cfg"]["num_heads_k"] = 3; }), // 4 % 3 != 0
                      {"'attn_cfg.num_heads_k'"});
  expect_config_error(edited([](json& j) { j["attn_cfg"].erase("num_heads_v"); }),
                      {"'attn_cfg.num_heads_v'"});
  expect_config_error(edited([](json& j) { j["attn_cfg"]["window_size"] = "64"; }),
                      {"'attn_cfg.window_size'"});
  expect_config_error(edited([](json& j) { j["attn_cfg"]["window_size"] = 6.5; }),
                      {"'attn_cfg.window_size'"});
  expect_config_error(edited([](json& j) { j["attn_cfg"]["rotary_emb_dim"] = 7; }),
                      {"'attn_cfg.rotary_emb_dim'"});
  expect_config_error(edited([](json& j) { j["attn_cfg"] = "none"; }), {"attn_cfg"});
  expect_config_error(edited([](json& j) { j["mixer_cfg"] = json::array(); }), {"mixer_cfg"});
}

TEST_CASE("input_gate_low_rank strings that are not \"auto\" or a number") {
  for (const char* bad : {"many", "", "12x", "-4", "0", "auto ", "1e3"}) {
    INFO("input_gate_low_rank = " << bad);
    expect_config_error(edited([&](json& j) { j["mixer_cfg"]["input_gate_low_rank"] = bad; }),
                        {"'mixer_cfg.input_gate_low_rank'"});
  }
  expect_config_error(
      edited([](json& j) { j["mixer_cfg"]["input_gate_low_rank"] = json::array(); }),
      {"'mixer_cfg.input_gate_low_rank'"});
}

// Found by tests/fuzz/fuzz_config: sizes derived from huge ratios or d_model overflowed int64 in
// model_config::d_inner() / ffn_hidden() (undefined behaviour, an abort under UBSan).
TEST_CASE("ratios and sizes whose derived sizes overflow") {
  expect_config_error(edited([](json& j) { j["mixer_cfg"]["expand_ratio"] = 1e300; }),
                      {"'mixer_cfg.expand_ratio'"});
  expect_config_error(edited([](json& j) { j["attn_cfg"]["ffn_expand_ratio"] = 1e300; }),
                      {"'attn_cfg.ffn_expand_ratio'"});
  expect_config_error(edited([](json& j) { j["d_model"] = 9000000000000000000ll; }), {"'d_model'"});
}

TEST_CASE("config.json missing, a folder, or absurdly large: each said plainly") {
  // A missing file was called "not a regular file", and a folder "not valid JSON".
  test::temp_dir d;
  test::expect_error([&] { (void)io::load_config(d.str()); }, {d.file("config.json"), "not found"});
  test::expect_error([&] { (void)io::load_config(d.file("absent.json")); },
                     {d.file("absent.json"), "not found"});
  std::filesystem::create_directory(d.path / "sub");
  std::filesystem::create_directory(d.path / "sub" / "config.json");
  test::expect_error([&] { (void)io::load_config(d.file("sub")); },
                     {"config.json", "is a directory"});
  // config.json had no size cap: a real one is a few kilobytes.
  d.write("config.json", "{\"model_type\": \"rodimus\", \"pad\": \"" +
                             std::string(17u * 1000u * 1000u, 'x') + "\"}");
  test::expect_error([&] { (void)io::load_config(d.str()); },
                     {d.file("config.json"), "more than the limit"});
}

TEST_CASE("config.json nested 200 KB deep is refused without a crash") {
  expect_config_error(std::string(100000, '[') + std::string(100000, ']'), {"deeper than 16"});
  expect_config_error("{\"mixer_cfg\":" + std::string(100000, '[') + std::string(100000, ']') + "}",
                      {"deeper than 16"});
}
