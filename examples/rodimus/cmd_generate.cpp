// rodimus generate [--model DIR] (--prompt-ids 1,2,3 | --prompt TEXT) [-n N]
//                  [--temp T --top-k K --top-p P --seed S] [--json]
//
// Prefills the prompt, then decodes N tokens one at a time through the decode step (the state of
// one sequence), streaming each new token as it comes, and prints the load time, the prefill and
// decode speeds and the state bytes per sequence. --temp 0 (the default) is greedy argmax;
// otherwise the logits are divided by T, cut to the K most likely (--top-k, 0 = all) and to the
// smallest set of probability >= P (--top-p, 1 = all), and sampled with a generator seeded by S
// (default 0). Generation stops early at the model's eos token. Without --model it runs the shipped
// tiny-coder.
//
// Text (--prompt / --chat, printing decoded text) belongs to the tokenizer: see prompt_tokens() and
// token_text(), the only two functions that need it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "rodimus/backend/cpu/all.hpp"
#include "rodimus/model/runner.hpp"

namespace rodimus::cli {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

[[maybe_unused]] bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

/// --model, else the model shipped in the source tree, else the installed one.
std::string model_dir(const args& a) {
  if (a.has("model")) return a.get("model");
#ifdef RODIMUS_DEFAULT_MODEL_DIR
  if (file_exists(std::string(RODIMUS_DEFAULT_MODEL_DIR) + "/config.json"))
    return RODIMUS_DEFAULT_MODEL_DIR;
#endif
#ifdef RODIMUS_INSTALLED_MODEL_DIR
  if (file_exists(std::string(RODIMUS_INSTALLED_MODEL_DIR) + "/config.json"))
    return RODIMUS_INSTALLED_MODEL_DIR;
#endif
  throw error("no --model given and the default tiny-coder model was not found");
}

std::vector<std::int64_t> parse_ids(const std::string& s) {
  std::vector<std::int64_t> ids;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t comma = std::min(s.find(',', pos), s.size());
    const std::string item = s.substr(pos, comma - pos);
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    if (item.empty() || used != item.size())
      throw error("--prompt-ids expects comma-separated integers, got '" + item + "' in '" + s +
                  "'");
    ids.push_back(v);
    pos = comma + 1;
  }
  return ids;
}

// ---- the tokenizer boundary ----

/// The prompt's token ids from the flags.
std::vector<std::int64_t> prompt_tokens(const args& a, const std::string& /*model_dir*/) {
  if (a.has("prompt-ids")) {
    if (a.has("prompt") || a.has("chat")) throw error("give one of --prompt-ids, --prompt, --chat");
    return parse_ids(a.get("prompt-ids"));
  }
  if (a.has("prompt") || a.has("chat"))
    throw error(
        "text prompts need the tokenizer, which is not available yet: use --prompt-ids 1,2,3");
  throw error("missing prompt: give --prompt-ids 1,2,3 (or --prompt TEXT)");
}

/// How a generated token is shown while streaming.
std::string token_text(std::int64_t id) { return std::to_string(id); }

// ---- sampling ----

struct sampling {
  double temp = 0.0;
  long long top_k = 0;
  double top_p = 1.0;
  std::mt19937_64 gen{0};

  std::int64_t pick(const float* logits, index_t V) {
    if (temp <= 0.0)
      return std::int64_t(std::max_element(logits, logits + V) - logits); // first maximum
    std::vector<index_t> order(static_cast<std::size_t>(V));
    std::iota(order.begin(), order.end(), index_t(0));
    std::stable_sort(order.begin(), order.end(),
                     [&](index_t x, index_t y) { return logits[x] > logits[y]; });
    std::size_t keep = std::size_t(V);
    if (top_k > 0) keep = std::min(keep, std::size_t(top_k));
    std::vector<double> p(keep);
    const double top = double(logits[order[0]]) / temp;
    double sum = 0.0;
    for (std::size_t i = 0; i < keep; ++i)
      sum += p[i] = std::exp(double(logits[order[i]]) / temp - top);
    if (top_p < 1.0) {
      double acc = 0.0;
      std::size_t n = 0;
      while (n < keep) {
        acc += p[n++] / sum;
        if (acc >= top_p) break;
      }
      keep = std::max<std::size_t>(n, 1);
      p.resize(keep);
    }
    std::discrete_distribution<std::size_t> d(p.begin(), p.end());
    return std::int64_t(order[d(gen)]);
  }
};

} // namespace

int run_generate(int argc, char** argv) {
  // `-n N` has a single dash: take it out before the flag parser sees it.
  long long n_new = 32;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "-n") == 0) {
      if (i + 1 >= argc) throw error("-n needs a value");
      const std::string v = argv[++i];
      std::size_t used = 0;
      try {
        n_new = std::stoll(v, &used);
      } catch (...) {
        used = 0;
      }
      if (v.empty() || used != v.size() || n_new < 0)
        throw error("-n expects a non-negative integer, got '" + v + "'");
      continue;
    }
    rest.push_back(argv[i]);
  }
  const args a(int(rest.size()), rest.data(), {"json"});
  a.allow_only({"model", "prompt-ids", "prompt", "chat", "temp", "top-k", "top-p", "seed", "json"});
  sampling s;
  s.temp = a.get_double("temp", 0.0);
  s.top_k = a.get_int("top-k", 0);
  s.top_p = a.get_double("top-p", 1.0);
  const long long seed = a.get_int("seed", 0);
  if (!(s.temp >= 0.0) || !std::isfinite(s.temp))
    throw error("--temp must be >= 0, got " + a.get("temp"));
  if (s.top_k < 0) throw error("--top-k must be >= 0, got " + a.get("top-k"));
  if (!(s.top_p > 0.0 && s.top_p <= 1.0))
    throw error("--top-p must be in (0, 1], got " + a.get("top-p"));
  s.gen.seed(std::uint64_t(seed));
  const bool json = a.has("json");

  const std::string dir = model_dir(a);
  const auto t_load = clock_type::now();
  const model_weights weights = model_weights::load(dir);
  const double load_s = seconds_since(t_load);
  const model_config& cfg = weights.config();
  const std::vector<std::int64_t> prompt = prompt_tokens(a, dir);
  if (prompt.empty()) throw error("the prompt is empty");

  thread_pool threads; // one participant per hardware thread
  model_runner<cpu<>> runner(weights, cpu<>{&threads});
  state_pool pool = runner.make_pool(1);
  const int slot = pool.acquire();
  const index_t V = cfg.vocab_size;

  std::vector<std::int64_t> out;
  const auto t_prefill = clock_type::now();
  std::vector<float> logits = runner.prefill(pool, {slot}, prompt, {0, std::int64_t(prompt.size())},
                                             logits_for::last_position);
  const double prefill_s = seconds_since(t_prefill);
  double decode_s = 0.0;
  long long decode_steps = 0;
  for (long long i = 0; i < n_new; ++i) {
    if (i > 0) {
      const auto t0 = clock_type::now();
      logits = runner.decode(pool, {slot}, {out.back()});
      decode_s += seconds_since(t0);
      ++decode_steps;
    }
    const std::int64_t tok = s.pick(logits.data(), V);
    out.push_back(tok);
    if (!json) {
      std::printf("%s%s", i ? " " : "", token_text(tok).c_str());
      std::fflush(stdout);
    }
    if (cfg.eos_token_id >= 0 && tok == cfg.eos_token_id) break;
  }
  const double prefill_tps = prefill_s > 0 ? double(prompt.size()) / prefill_s : 0.0;
  const double decode_tps = decode_s > 0 ? double(decode_steps) / decode_s : 0.0;
  const std::size_t state_bytes = pool.bytes_per_sequence();
  if (json) {
    nlohmann::json j = {{"model", dir},
                        {"prompt_tokens", prompt.size()},
                        {"tokens", out},
                        {"load_s", load_s},
                        {"prefill_tokens_per_s", prefill_tps},
                        {"decode_tokens_per_s", decode_tps},
                        {"state_bytes_per_sequence", state_bytes}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf(
        "\n\nload %.3f s | prefill %zu tokens, %.1f tokens/s | decode %lld tokens, %.1f tokens/s | "
        "state %zu bytes (%.2f MiB) per sequence\n",
        load_s, prompt.size(), prefill_tps, decode_steps, decode_tps, state_bytes,
        double(state_bytes) / (1024.0 * 1024.0));
  }
  return 0;
}

} // namespace rodimus::cli
