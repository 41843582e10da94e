// What block quantisation (model/quant_policy.hpp presets q8 and q4) costs on the shipped
// tiny-coder (bf16 weights), all three models computed by the library itself on cpu<>:
//   - per-token cross-entropy over Python source that was not in its training corpus
//     (tests/data/quant_eval: PyYAML and attrs, see its README), in windows of 512 tokens from a
//     fresh state (the training length), through prefill (all windows) and through the decode
//     step (the first 32 windows: the decode kernels differ); the goals of issue 12, asserted on
//     both: CE(q8) <= 1.005 CE(stored), CE(q4) <= 1.03 CE(stored);
//   - the max and mean |logit difference| against the stored model on expected.safetensors'
//     input_ids, and the greedy continuation of its prompt: how many of the 40 tokens agree
//     before the first difference (reported, not asserted: a near-tie may flip; docs/QUANT.md).
// Skipped under the address sanitizer (minutes at -O1). RODIMUS_QUANT_EVAL_ALL=1 also reports the
// policies docs/QUANT.md compares (the channel gate's up projection W1 in q8_0 with the other
// low-rank projections, as the presets had it from d8f016d; the low-rank DDTS projections stored,
// as the presets had them until 2026-12-07, or for q4 in q4_0; the head kept stored; for q4, the
// head in q8_0 with the low-rank projections stored, as the q4 preset had it before q4_0's scale
// search).
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cases/model_cases.hpp"
#include "rodimus/backend/cpu/all.hpp"
#include "rodimus/io/tokenizer.hpp"
#include "rodimus/model/backend_weights.hpp"
#include "rodimus/model/weights.hpp"
#include "support/quant_support.hpp"

using namespace rodimus;

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RODIMUS_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define RODIMUS_TEST_ASAN 1
#endif

namespace {

constexpr index_t kWindow = 512;

std::string model_dir() { return test::source_dir() + "/examples/models/tiny-coder"; }

std::vector<std::int64_t> eval_tokens() {
  std::ifstream in(test::data_dir() + "/quant_eval/pyyaml_attrs.py.txt", std::ios::binary);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  const auto tok = io::tokenizer::from_file(model_dir() + "/tokenizer.json");
  const std::vector<std::int32_t> ids = tok.encode(ss.str(), false);
  return std::vector<std::int64_t>(ids.begin(), ids.end());
}

/// Mean -log p(next token) over every window of kWindow tokens (f64 log-sum-exp per position).
/// decode = false: one prefill per window (8 windows per call: the GEMM kernels); decode = true:
/// every token through the decode step, 4 windows side by side (M = 4: the matrix-vector kernels,
/// which on AVX-512 and AVX2 multiply x quantised to int8), over the first `max_windows` windows.
double cross_entropy(const model_weights& w, const std::vector<std::int64_t>& tokens,
                     thread_pool& pool, bool decode = false, index_t max_windows = 1 << 30) {
  model_runner<cpu<>> runner(w, cpu<>{&pool});
  const index_t V = w.config().vocab_size;
  const index_t windows = std::min(index_t(tokens.size()) / kWindow, max_windows);
  const index_t group = decode ? 4 : 8;
  double sum = 0;
  index_t count = 0;
  for (index_t first = 0; first < windows; first += group) {
    const index_t B = std::min(group, windows - first);
    const std::vector<std::int64_t> ids(tokens.begin() + first * kWindow,
                                        tokens.begin() + (first + B) * kWindow);
    const std::vector<float> lg = sequence_logits(runner, ids, B, kWindow, decode ? 0 : kWindow);
    for (index_t b = 0; b < B; ++b)
      for (index_t t = 0; t + 1 < kWindow; ++t) {
        const float* row = lg.data() + ((b * kWindow + t) * V);
        double mx = row[0];
        for (index_t v = 1; v < V; ++v)
          mx = std::max(mx, double(row[v]));
        double z = 0;
        for (index_t v = 0; v < V; ++v)
          z += std::exp(double(row[v]) - mx);
        const std::int64_t next = ids[std::size_t(b * kWindow + t + 1)];
        sum += mx + std::log(z) - double(row[next]);
        ++count;
      }
  }
  REQUIRE(count > 0);
  return sum / double(count);
}

struct logit_diff {
  double max_abs = 0, mean_abs = 0;
};

logit_diff compare_logits(const model_weights& a, const model_weights& b, thread_pool& pool) {
  const auto e = io::safetensors_file::open(model_dir() + "/expected.safetensors");
  const auto& shape = e.at("input_ids").shape;
  const auto ids = e.read<std::int64_t>("input_ids");
  model_runner<cpu<>> ra(a, cpu<>{&pool}), rb(b, cpu<>{&pool});
  const auto la = sequence_logits(ra, ids, shape[0], shape[1], shape[1]);
  const auto lb = sequence_logits(rb, ids, shape[0], shape[1], shape[1]);
  logit_diff d;
  for (std::size_t i = 0; i < la.size(); ++i) {
    const double x = std::fabs(double(la[i]) - double(lb[i]));
    d.max_abs = std::max(d.max_abs, x);
    d.mean_abs += x;
  }
  d.mean_abs /= double(la.size());
  return d;
}

/// Greedy tokens of `w` from the default prompt that equal the stored model's, before the first
/// difference (of 40).
std::size_t greedy_agreement(const model_weights& stored, const model_weights& w,
                             thread_pool& pool) {
  const auto e = io::safetensors_file::open(model_dir() + "/expected.safetensors");
  const auto prompt = e.read<std::int64_t>("greedy_prompt_ids");
  model_runner<cpu<>> ra(stored, cpu<>{&pool}), rb(w, cpu<>{&pool});
  const auto ga = test::greedy(ra, prompt, 40), gb = test::greedy(rb, prompt, 40);
  std::size_t n = 0;
  while (n < ga.size() && ga[n] == gb[n])
    ++n;
  return n;
}

model_weights load(const quant_policy& q) {
  return model_weights::load(model_dir(), weight_placement::memory, {}, q);
}

} // namespace

TEST_CASE("tiny-coder q8 / q4: cross-entropy on unseen Python within the goals of issue 12") {
#ifdef RODIMUS_TEST_ASAN
  // Three models over 120 K tokens take minutes at -O1 with ASan; the optimised build runs it.
  MESSAGE("skipped under the address sanitizer");
  return;
#endif
  thread_pool pool;
  const std::vector<std::int64_t> tokens = eval_tokens();
  const model_weights stored = load({});
  const double ce_stored = cross_entropy(stored, tokens, pool);
  constexpr index_t decode_windows = 32; // 16 K tokens through the decode step
  const double ce_stored_decode = cross_entropy(stored, tokens, pool, true, decode_windows);
  MESSAGE("eval tokens " << tokens.size() << " (" << tokens.size() / kWindow << " windows of "
                         << kWindow << "); CE stored (bf16) " << ce_stored);
  struct variant {
    const char* name;
    quant_policy policy;
    double goal; // CE ratio to stored; 0: reported only
  };
  std::vector<variant> variants = {{"q8", quant_policy::parse("q8"), 1.005},
                                   {"q4", quant_policy::parse("q4"), 1.03}};
  if (const char* all = std::getenv("RODIMUS_QUANT_EVAL_ALL"); all && std::string(all) == "1") {
    for (weight_format f : {weight_format::q8_0, weight_format::q4_0}) {
      quant_policy up_q8 = quant_policy::preset(f), low_rank_stored = quant_policy::preset(f),
                   head_stored = quant_policy::preset(f);
      up_q8.channel_gate_up = weight_format::q8_0;      // the presets from d8f016d
      low_rank_stored.low_rank = weight_format::stored; // the presets until 2026-12-07
      head_stored.lm_head = weight_format::stored;
      const bool q8 = f == weight_format::q8_0;
      variants.push_back({q8 ? "q8, W1 q8_0" : "q4, W1 q8_0", up_q8, 0});
      variants.push_back({q8 ? "q8, low rank stored" : "q4, low rank stored", low_rank_stored, 0});
      variants.push_back({q8 ? "q8, head stored" : "q4, head stored", head_stored, 0});
    }
    quant_policy q4_low_rank_q4 = quant_policy::preset(weight_format::q4_0);
    q4_low_rank_q4.low_rank = weight_format::q4_0; // W1 stored, as in the presets
    variants.push_back({"q4, low rank q4 (W1 stored)", q4_low_rank_q4, 0});
    quant_policy q4_head_q8 = quant_policy::preset(weight_format::q4_0);
    q4_head_q8.lm_head = weight_format::q8_0;
    q4_head_q8.low_rank = weight_format::stored; // the q4 preset until the head went to q4_0
    variants.push_back({"q4, head q8, low rank stored", q4_head_q8, 0});
  }
  for (const variant& v : variants) {
    const model_weights w = load(v.policy);
    const double ce = cross_entropy(w, tokens, pool);
    const double ce_decode = cross_entropy(w, tokens, pool, true, decode_windows);
    const logit_diff d = compare_logits(stored, w, pool);
    const std::size_t agree = greedy_agreement(stored, w, pool);
    MESSAGE(std::string(v.name) << ": CE " << ce << " (ratio " << ce / ce_stored
                                << "), logits max |diff| " << d.max_abs << ", mean |diff| "
                                << d.mean_abs << ", greedy agreement " << agree
                                << " / 40; decode path over the first " << decode_windows
                                << " windows: CE " << ce_decode << " against " << ce_stored_decode
                                << " (ratio " << ce_decode / ce_stored_decode << ")");
    if (v.goal > 0) {
      INFO(v.name);
      CHECK(ce <= v.goal * ce_stored);
      CHECK(ce_decode <= v.goal * ce_stored_decode);
      CHECK(std::isfinite(ce));
    }
  }
}

TEST_CASE("quantised weights: which matrices the presets quantise, and their bytes") {
  const model_weights stored = load({});
  const model_weights q4 = load(quant_policy::parse("q4"));
  const layer_weights& L = q4.layers()[0];
  CHECK(L.mixer.fc.format == weight_format::q4_0);
  CHECK(L.mixer.out_proj.format == weight_format::q4_0);
  CHECK(L.attn.q_proj.format == weight_format::q4_0);
  CHECK(L.ffn.out_proj.format == weight_format::q4_0);
  CHECK(L.mixer.in_proj.format == weight_format::q8_0); // low rank: q8_0 in both presets
  CHECK(L.mixer.mem_gate.format == weight_format::q8_0);
  CHECK(L.mixer.ch_gate_down.format == weight_format::q8_0);
  // The channel gate's up projection W1 stays stored (its own class): mixer_decode applies it.
  CHECK(L.mixer.ch_gate_up.format == weight_format::stored);
  CHECK(L.mixer.ch_gate_up.data != nullptr);
  CHECK(L.mixer.ch_gate_up.type == stored.layers()[0].mixer.ch_gate_up.type);
  for (const char* preset : {"q8", "q4"}) {
    CAPTURE(preset);
    const quant_policy p = quant_policy::parse(preset);
    CHECK(p.low_rank == weight_format::q8_0);
    CHECK(p.channel_gate_up == weight_format::stored);
    CHECK(p.format_for("model.layers.3.mixer.inner_mixer.ch_gate_proj.0.weight") ==
          weight_format::q8_0);
    CHECK(p.format_for("model.layers.3.mixer.inner_mixer.ch_gate_proj.1.weight") ==
          weight_format::stored);
  }
  // Still a class that may be quantised (a saved file may hold it quantised: test_quant_file).
  CHECK(quant_policy::quantisable("model.layers.0.mixer.inner_mixer.ch_gate_proj.1.weight"));
  CHECK(quant_policy::class_of("model.layers.0.mixer.inner_mixer.ch_gate_proj.1.weight") ==
        &quant_policy::channel_gate_up);
  quant_policy up_only;
  up_only.channel_gate_up = weight_format::q8_0;
  CHECK(up_only.any());
  CHECK(!quant_policy::preset(weight_format::stored).any());
  CHECK(q4.embeddings().format == weight_format::stored); // the gather reads the stored table
  CHECK(q4.lm_head().format == weight_format::q4_0);      // tied: a quantised copy
  CHECK(q4.lm_head().data != q4.embeddings().data);
  CHECK(q4.lm_head().bytes() * 32 == stored.lm_head().bytes() / 2 * 18);
  CHECK(q4.dtype_counts() == stored.dtype_counts()); // counts the checkpoint's parameters once
  CHECK_THROWS_WITH_AS(quant_policy::parse("q5"), "--weights: expected stored, q8 or q4, got 'q5'",
                       error);
  // A row length that is not a multiple of 32 is quantised, with a padded last block: the golden
  // Rodimus+'s FFN down projection [D, F], F = 176 = 5.5 blocks.
  CHECK(quant_policy::parse("q8").format_for("model.layers.0.ffn.out_proj.weight") ==
        weight_format::q8_0);
  const std::string plus = test::golden_dir() + "/rodimus_plus_tiny";
  const model_weights plus_stored = model_weights::load(plus);
  const model_weights plus_q4 =
      model_weights::load(plus, weight_placement::memory, {}, quant_policy::parse("q4"));
  const weight_matrix& down = plus_q4.layers()[0].ffn.out_proj;
  REQUIRE(down.cols == 176);
  CHECK(down.format == weight_format::q4_0);
  const quant_rows_view<q4_0_block> blocks = down.quant_rows<q4_0_block>();
  CHECK(blocks.blocks.shape[1] == 6);
  CHECK(down.bytes() == std::size_t(down.rows) * 6 * sizeof(q4_0_block));
  // Its blocks are the rows quantised with the last block zero-padded: dequantised, each block of
  // each row is within what the format guarantees of the stored one (its squared error at most
  // that of the plain rule d = -m / 8 over the block's values, so every element within the square
  // root of that; tests/support/quant_support.hpp), and the padding reads as 0.
  const std::vector<float> ref =
      plus_stored.checkpoint().read<float>("model.layers.0.ffn.out_proj.weight");
  // (Read through the rows' layout: quant_rows_view unpacks rows of the decode layout.)
  std::vector<q4_0_block> row_blocks(6);
  std::vector<float> row(std::size_t(down.cols) + 8);
  index_t bad = 0;
  for (index_t r = 0; r < down.rows; ++r) {
    test::poison(row);
    blocks.unpack_row(r, row_blocks.data());
    REQUIRE(dequantise_row(row_blocks.data(), down.cols, row.data()).ok());
    for (index_t b = 0; b < 6; ++b) {
      const float* x = ref.data() + r * down.cols + b * 32;
      const int n = int(std::min<index_t>(32, down.cols - b * 32));
      const double plain = test::plain_q4_0_sse(x, n);
      if (!(test::block_sse(x, row_blocks[std::size_t(b)], n) <= plain * (1 + 1e-6))) ++bad;
      for (int j = 0; j < n; ++j)
        if (!(std::fabs(double(row[std::size_t(b * 32 + j)]) - x[j]) <=
              std::sqrt(plain) * (1 + 1e-6)))
          ++bad;
    }
    for (std::size_t k = std::size_t(down.cols); k < row.size(); ++k)
      bad += !std::isnan(row[k]); // exactly K values written
    for (int j = 176 % 32; j < 32; ++j)
      bad += dequantise(blocks.block(r, 5), j) != 0.0f;
  }
  CHECK(bad == 0);
}

TEST_CASE("a backend copy of the weights (CUDA's path) refuses quantised weights, naming them") {
  const model_weights q8 = load(quant_policy::parse("q8"));
  CHECK_NOTHROW(refuse_quantised_weights(load({})));
  std::string message;
  try {
    refuse_quantised_weights(q8); // backend_weights' first step (CUDA goes through it)
  } catch (const error& e) {
    message = e.what();
  }
  INFO(message);
  CHECK(message.find("quantised weights (q8 / q4) are not supported on this backend yet") !=
        std::string::npos);
}
