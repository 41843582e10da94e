// rodimus generate [--model DIR] (--prompt-ids 1,2,3 | --prompt TEXT | --chat TEXT [--system TEXT])
//                  [-n N] [--temp T --top-k K --top-p P --seed S] [--ignore-eos]
//                  [--backend cpu|scalar|cuda] [--threads N] [--weights stored|q8|q4] [--mmap]
//                  [--json]
//
// --weights q8|q4: the big projections and the head block-quantised at load, the low-rank
// projections in q8_0 but the channel gate's up projection (docs/QUANT.md), on --threads threads.
//
// Prefills the prompt, then decodes N tokens (default 64) one at a time through the decode step
// (the state of one sequence), streaming the text as it comes, and prints the load time, the
// prefill and decode speeds and the state bytes per sequence.
//
// Prompts: --prompt-ids takes token ids; --prompt encodes TEXT with DIR/tokenizer.json; --chat
// wraps TEXT in the Rodimus chat format (docs/MODEL.md §7.3)
//   [<role>SYSTEM</role>{--system}]<role>HUMAN</role>{TEXT}<role>ASSISTANT</role>
// and encodes that. With neither --model nor a prompt it runs the shipped tiny-coder on
// "def fibonacci(n):\n".
//
// Output: the prompt, then the continuation, streamed (flushed after every write; a character
// split across tokens is held back until it is complete), then a short timing block. Without
// DIR/tokenizer.json (allowed with --prompt-ids only) the ids are printed instead of text. --json
// prints one JSON object instead: prompt and generated ids, their text, why generation stopped and
// the timings and where the weights were (`weights`: "memory", or "mapped" with --mmap, which reads
// them in place from the file mapping instead of copying them into memory).
//
// Sampling: --temp 0 (the default) is greedy argmax; otherwise the logits are divided by T, cut to
// the K most likely (--top-k, 0 = all) and to the smallest set of probability >= P (--top-p,
// 1 = all), and sampled with a generator seeded by S (default 0). Generation stops at the eos token
// (config eos_token_id, else the tokenizer's <|endoftext|>) unless --ignore-eos. A model with an
// unbounded attention window holds max_position_embeddings positions: a prompt and -n that need
// more are refused before anything is generated.
//
// --backend: cpu (default), scalar or cuda (the GPU, where the tool was built with nvcc); --threads
// N: the CPU backend's threads (1 to 1024; default one per hardware thread). A write to standard
// output that fails ends the run with exit code 1.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend_select.hpp"
#include "cli.hpp"
#include "rodimus/core/finite.hpp"
#include "rodimus/io/read_file.hpp"
#include "rodimus/io/stream_decoder.hpp"
#include "rodimus/io/tokenizer.hpp"
#include "rodimus/runtime/runner.hpp"

namespace rodimus::cli {

namespace {

using clock_type = std::chrono::steady_clock;

constexpr const char* default_prompt = "def fibonacci(n):\n";

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// Whether `path` exists (whatever it is: a FIFO is then refused by the reader, not skipped).
bool file_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

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
    const std::optional<long long> v = parse_integer(item);
    if (!v)
      throw error("--prompt-ids expects comma-separated integers, got '" + item + "' in '" + s +
                  "'");
    ids.push_back(*v);
    pos = comma + 1;
  }
  return ids;
}

// ---- the prompt ----

/// The chat wrapper of docs/MODEL.md §7.3 around one user message (and an optional system message).
std::string chat_text(const std::string& message, const std::optional<std::string>& system) {
  std::string s;
  if (system) s += "<role>SYSTEM</role>" + *system;
  s += "<role>HUMAN</role>" + message + "<role>ASSISTANT</role>";
  return s;
}

struct prompt {
  std::vector<std::int64_t> ids;
  std::optional<std::string> text; // what was encoded (absent for --prompt-ids)
};

/// The prompt from the flags; `tok` is null when the model dir has no tokenizer.json.
prompt prompt_tokens(const args& a, const std::string& dir, const io::tokenizer* tok) {
  const int given = int(a.has("prompt-ids")) + int(a.has("prompt")) + int(a.has("chat"));
  if (given > 1) throw error("give only one of --prompt-ids, --prompt, --chat");
  if (a.has("system") && !a.has("chat")) throw error("--system goes with --chat");
  prompt p;
  if (a.has("prompt-ids")) {
    p.ids = parse_ids(a.get("prompt-ids"));
    return p;
  }
  if (a.has("prompt")) {
    p.text = a.get("prompt");
  } else if (a.has("chat")) {
    p.text = chat_text(a.get("chat"), a.has("system") ? std::optional<std::string>(a.get("system"))
                                                      : std::nullopt);
  } else if (!a.has("model")) {
    p.text = default_prompt;
  } else {
    throw error("missing prompt: give --prompt TEXT, --chat TEXT or --prompt-ids 1,2,3");
  }
  if (!tok)
    throw error(std::string(a.has("chat") ? "--chat" : "--prompt") + " needs a tokenizer, but " +
                dir + "/tokenizer.json does not exist: give token ids with --prompt-ids 1,2,3");
  for (const std::int32_t id : tok->encode(*p.text))
    p.ids.push_back(id);
  return p;
}

/// Streams generated tokens as text (whole characters only), or as ids without a tokenizer.
class token_printer {
public:
  explicit token_printer(const io::tokenizer* tok) : tok_(tok) {
    if (tok_) dec_ = std::make_unique<io::utf8_stream_decoder>(*tok_);
  }
  /// The text to show for one more token.
  std::string push(std::int64_t id) {
    if (!dec_) return (first_ ? (first_ = false, " | ") : " ") + std::to_string(id);
    if (id < 0 || id >= tok_->vocab_size()) return {}; // a model row the tokenizer has no text for
    return dec_->push(std::int32_t(id));
  }
  std::string finish() { return dec_ ? dec_->finish() : std::string(); }

private:
  const io::tokenizer* tok_;
  std::unique_ptr<io::utf8_stream_decoder> dec_;
  bool first_ = true;
};

/// The text of ids (null without a tokenizer); ids outside the tokenizer's vocabulary are left out.
nlohmann::json ids_text(const io::tokenizer* tok, const std::vector<std::int64_t>& ids,
                        bool skip_special) {
  if (!tok) return nullptr;
  std::vector<std::int32_t> v;
  for (const std::int64_t id : ids)
    if (id >= 0 && id < tok->vocab_size()) v.push_back(std::int32_t(id));
  return tok->decode(v, skip_special);
}

// ---- sampling ----

struct sampling {
  double temp = 0.0;
  long long top_k = 0;
  double top_p = 1.0;
  std::mt19937_64 gen{0};

  std::int64_t pick(const float* logits, index_t V) {
    // Never present a NaN or an infinity as a choice (max_element would take token 0 for a NaN).
    const std::size_t bad = first_non_finite(dtype::f32, logits, std::size_t(V));
    if (bad < std::size_t(V))
      throw error("generate: the logit of token " + std::to_string(bad) + " is " +
                  non_finite_kind(dtype::f32, logits, bad) +
                  ": the model's weights or state give non-finite values");
    if (temp <= 0.0)
      return std::int64_t(std::max_element(logits, logits + V) - logits); // first maximum
    std::vector<index_t> order(static_cast<std::size_t>(V));
    std::iota(order.begin(), order.end(), index_t(0));
    std::stable_sort(order.begin(), order.end(),
                     [&](index_t x, index_t y) { return logits[x] > logits[y]; });
    std::size_t keep = std::size_t(V);
    if (top_k > 0) keep = std::min(keep, std::size_t(top_k));
    std::vector<double> p(keep);
    // exp((l - top) / T): the difference first, so a tiny T (1e-320) gives 1 for the most likely
    // tokens and 0 for the rest instead of inf - inf.
    const double top = double(logits[order[0]]);
    double sum = 0.0;
    for (std::size_t i = 0; i < keep; ++i)
      sum += p[i] = std::exp((double(logits[order[i]]) - top) / temp);
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
  const args a(argc, argv,
               {"model", "prompt-ids", "prompt", "chat", "system", "n", "temp", "top-k", "top-p",
                "seed", "threads", "backend", "matmul", "launch", "weights", "tuning"},
               {"json", "ignore-eos", "mmap"});
  const long long n_new = a.get_int("n", 64, 0);
  sampling s;
  s.temp = a.get_double("temp", 0.0);
  s.top_k = a.get_int("top-k", 0, 0);
  s.top_p = a.get_double("top-p", 1.0);
  const long long seed = a.get_int("seed", 0);
  if (!(s.temp >= 0.0) || !std::isfinite(s.temp))
    throw error("--temp must be >= 0, got " + a.get("temp"));
  if (!(s.top_p > 0.0 && s.top_p <= 1.0))
    throw error("--top-p must be in (0, 1], got " + a.get("top-p"));
  s.gen.seed(std::uint64_t(seed));
  const bool json = a.has("json");
  const backend_options backend = backend_flags(a, "cpu", 0);

  const std::string dir = model_dir(a);
  const auto t_load = clock_type::now();
  const model_weights weights = load_weights(dir, a);
  std::optional<io::tokenizer> tokenizer;
  if (file_exists(dir + "/tokenizer.json"))
    tokenizer = io::tokenizer::from_json_text(io::read_regular_file(dir + "/tokenizer.json"),
                                              dir + "/tokenizer.json");
  const double load_s = seconds_since(t_load);
  const io::tokenizer* tok = tokenizer ? &*tokenizer : nullptr;
  const model_config& cfg = weights.config();
  const index_t V = cfg.vocab_size;

  const prompt p = prompt_tokens(a, dir, tok);
  if (p.ids.empty()) throw error("the prompt is empty (it encodes to no tokens)");
  for (std::size_t i = 0; i < p.ids.size(); ++i)
    if (p.ids[i] < 0 || p.ids[i] >= V)
      throw error(std::string(a.has("prompt-ids") ? "--prompt-ids" : "the encoded prompt") +
                  ": token id " + std::to_string(p.ids[i]) + " (at index " + std::to_string(i) +
                  ") is out of range [0, " + std::to_string(V) + ") for the vocabulary of " + dir);

  // An unbounded attention window keeps every position, up to max_position_embeddings: refuse a
  // request that cannot fit before generating anything (the prompt, then one position per
  // generated token but the last, which is never fed back).
  if (cfg.is_plus() && cfg.window_left() < 0) {
    const long long capacity = cfg.max_position_embeddings, P = (long long)p.ids.size();
    const long long most = capacity - P + 1;
    if (P > capacity || (n_new > 0 && n_new > most))
      throw error("the prompt (" + std::to_string(P) + " tokens) and -n " + std::to_string(n_new) +
                  " need more than the " + std::to_string(capacity) +
                  " positions (max_position_embeddings) of this model's unbounded attention "
                  "window: " +
                  (most >= 1 ? "give -n at most " + std::to_string(most)
                             : std::string("shorten the prompt")));
  }

  std::int64_t eos = a.has("ignore-eos") ? -1 : cfg.eos_token_id;
  if (!a.has("ignore-eos") && eos < 0 && tok)
    eos = tok->find_token_id("<|endoftext|>").value_or(-1);

  // --backend (cpu by default: --threads, else one participant per hardware thread).
  const backend_session session = open_session(weights, backend, 1);
  model_session& model = *session.session;
  const int slot = model.acquire();

  // Text output: the prompt as the model sees it, then the continuation as it comes.
  token_printer printer(tok);
  bool at_line_start = true;
  auto emit = [&](const std::string& text) {
    if (json || text.empty()) return;
    write_stdout(text); // stop at the first failed write (a full disk, a closed pipe)
    at_line_start = text.back() == '\n';
  };
  if (p.text) {
    emit(*p.text);
  } else if (tok) {
    emit(ids_text(tok, p.ids, false).get<std::string>());
  } else {
    std::string ids;
    for (std::size_t i = 0; i < p.ids.size(); ++i)
      ids += (i ? " " : "") + std::to_string(p.ids[i]);
    emit(ids);
  }

  std::vector<std::int64_t> out;
  const auto t_prefill = clock_type::now();
  std::vector<float> logits =
      model.prefill({slot}, p.ids, {0, std::int64_t(p.ids.size())}, logits_for::last_position);
  const double prefill_s = seconds_since(t_prefill);
  double decode_s = 0.0;
  long long decode_steps = 0;
  bool stopped_at_eos = false;
  for (long long i = 0; i < n_new; ++i) {
    if (i > 0) {
      const auto t0 = clock_type::now();
      logits = model.decode({slot}, {out.back()});
      decode_s += seconds_since(t0);
      ++decode_steps;
    }
    const std::int64_t t = s.pick(logits.data(), V);
    out.push_back(t);
    if (t == eos) {
      stopped_at_eos = true;
      break;
    }
    emit(printer.push(t));
  }
  emit(printer.finish());

  const double prefill_tps = prefill_s > 0 ? double(p.ids.size()) / prefill_s : 0.0;
  const double decode_tps = decode_s > 0 ? double(decode_steps) / decode_s : 0.0;
  const std::size_t state_bytes = model.bytes_per_sequence();
  if (json) {
    nlohmann::json j = {{"model", dir},
                        {"prompt_ids", p.ids},
                        {"prompt_tokens", p.ids.size()},
                        {"prompt_text", ids_text(tok, p.ids, false)},
                        {"tokens", out},
                        {"text", ids_text(tok, out, true)},
                        {"stop", stopped_at_eos ? "eos" : "length"},
                        {"weights", placement_name(weights.placement())},
                        {"backend", session.description},
                        {"load_s", load_s},
                        {"prefill_s", prefill_s},
                        {"decode_s", decode_s},
                        {"decode_steps", decode_steps},
                        {"prefill_tokens_per_s", prefill_tps},
                        {"decode_tokens_per_s", decode_tps},
                        {"state_bytes_per_sequence", state_bytes}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::string name = std::filesystem::path(dir).filename().string();
    if (name.empty()) name = std::filesystem::path(dir).parent_path().filename().string();
    char how[160];
    if (s.temp <= 0.0)
      std::snprintf(how, sizeof how, "greedy");
    else
      std::snprintf(how, sizeof how, "sampled: temp %g, top-k %lld, top-p %g, seed %lld", s.temp,
                    s.top_k, s.top_p, seed);
    std::printf("%s\n", at_line_start ? "" : "\n");
    std::printf("-- %s: %s, %lld layers, d_model %lld, vocab %lld; %s; %s\n", name.c_str(),
                cfg.is_plus() ? "Rodimus+" : "Rodimus", (long long)cfg.n_layer,
                (long long)cfg.d_model, (long long)V, how, session.description.c_str());
    std::printf("load     %.3f s\n", load_s);
    std::printf("prefill  %zu tokens, %.1f tokens/s\n", p.ids.size(), prefill_tps);
    std::printf("decode   %lld tokens, %.1f tokens/s%s\n", decode_steps, decode_tps,
                stopped_at_eos ? " (stopped at eos)" : "");
    std::printf("state    %zu bytes (%.2f MiB) per sequence\n", state_bytes,
                double(state_bytes) / (1024.0 * 1024.0));
  }
  return 0;
}

} // namespace rodimus::cli
