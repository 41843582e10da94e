// Tokenizer speed on the test corpus (tests/data/tokenizer/corpus.jsonl, 2447 strings of code,
// prose, many scripts, random Unicode) with the tiny-coder tokenizer.json: encode with a warm word
// cache (the steady state of a server), encode with the cache emptied before every pass (each
// distinct word goes through BPE once per pass), decode, and loading the file.
// Counters: bytes/s of UTF-8 text, tokens/s. Needs rodimus::text (Oniguruma) at link time.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rodimus/io/tokenizer.hpp"

namespace {

// The repository root, from this file's path (bench/bench_tokenizer.cpp).
std::string repo_root() {
  std::string f = __FILE__;
  const auto cut = f.rfind("bench/bench_tokenizer.cpp");
  return cut == std::string::npos ? std::string(".") : f.substr(0, cut);
}
std::string tokenizer_path() { return repo_root() + "examples/models/tiny-coder/tokenizer.json"; }

struct corpus_data {
  std::vector<std::string> texts;
  std::size_t bytes = 0;
};

const corpus_data& corpus() {
  static const corpus_data c = [] {
    corpus_data d;
    std::ifstream in(repo_root() + "tests/data/tokenizer/corpus.jsonl");
    if (!in) throw rodimus::error("bench_tokenizer: cannot open tests/data/tokenizer/corpus.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      d.texts.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
      d.bytes += d.texts.back().size();
    }
    return d;
  }();
  return c;
}

const rodimus::io::tokenizer& tiny() {
  static const rodimus::io::tokenizer t = rodimus::io::tokenizer::from_file(tokenizer_path());
  return t;
}

void set_counters(benchmark::State& state, std::size_t tokens_per_pass) {
  const auto passes = double(state.iterations());
  state.counters["bytes/s"] =
      benchmark::Counter(passes * double(corpus().bytes), benchmark::Counter::kIsRate);
  state.counters["tokens/s"] =
      benchmark::Counter(passes * double(tokens_per_pass), benchmark::Counter::kIsRate);
  state.counters["strings"] = double(corpus().texts.size());
}

void encode_corpus_warm(benchmark::State& state) {
  const auto& t = tiny();
  std::size_t tokens = 0;
  for (const auto& s : corpus().texts)
    tokens += t.encode(s).size(); // fills the cache
  for (auto _ : state) {
    for (const auto& s : corpus().texts)
      benchmark::DoNotOptimize(t.encode(s));
  }
  set_counters(state, tokens);
}
BENCHMARK(encode_corpus_warm)->Unit(benchmark::kMillisecond);

void encode_corpus_cold_cache(benchmark::State& state) {
  const auto& t = tiny();
  std::size_t tokens = 0;
  for (auto _ : state) {
    t.clear_cache();
    tokens = 0;
    for (const auto& s : corpus().texts)
      tokens += t.encode(s).size();
  }
  set_counters(state, tokens);
}
BENCHMARK(encode_corpus_cold_cache)->Unit(benchmark::kMillisecond);

void decode_corpus(benchmark::State& state) {
  const auto& t = tiny();
  std::vector<std::vector<std::int32_t>> ids;
  std::size_t tokens = 0;
  for (const auto& s : corpus().texts) {
    ids.push_back(t.encode(s));
    tokens += ids.back().size();
  }
  for (auto _ : state) {
    for (const auto& v : ids)
      benchmark::DoNotOptimize(t.decode(v));
  }
  set_counters(state, tokens);
}
BENCHMARK(decode_corpus)->Unit(benchmark::kMillisecond);

void load_tokenizer_json(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(rodimus::io::tokenizer::from_file(tokenizer_path()));
}
BENCHMARK(load_tokenizer_json)->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
