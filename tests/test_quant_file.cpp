// Quantised checkpoints on disk (model/save_checkpoint.hpp, the layout of model/quant_file.hpp,
// docs/QUANT.md "Saved files"):
//   - round trips: tiny-coder (tied head) and a golden Rodimus+ (untied, f32) quantised q8 and q4
//     in memory, saved, loaded back (no policy, the agreeing policy, and in place from the
//     mapping): every quantised matrix byte-identical with the same format, shape and source
//     dtype, every stored tensor byte-identical, and logits equal bit for bit to the in-memory
//     quantised model's on the scalar and cpu backends (fresh random token ids; same backend);
//     the golden Rodimus+'s FFN down projection has K = F = 176 (5.5 blocks): it is quantised too
//     and saved as [D, ceil(176 / 32) = 6, B]; a random one-layer Rodimus+ with D = 512 has
//     whole groups of 16 blocks in its rows (every K >= 512: the decode layout,
//     quant_layout::groups16, differs from the blocks there), which are saved as blocks: exactly
//     what quantise_row gives from the checkpoint's rows;
//   - quantising at load on 1, 2, 3, 7 threads or the default (load's quant_threads): the same
//     blocks byte for byte, on one thread exactly what quantise_row gives (a fresh random model);
//   - the policy: a q4 file asked for q8 is an error naming the tensor and both formats; a file
//     saved with the channel gate's up projection in q8_0 (the presets from d8f016d) loads with
//     no policy, as the file says, and the current presets (W1 stored) name the disagreement;
//   - malformed files (each written here from a valid save, one thing wrong): an error naming the
//     tensor and what is wrong for an unknown format, block bytes or a U8 shape inconsistent with
//     the logical shape (a block count other than ceil(K / 32), also for K % 32 != 0), a logical
//     shape the config does not expect (a K whose block count the U8 shape matches included),
//     padding past K that is not zero, a quantised tensor the model reads stored (embeddings, a
//     norm), a truncated file, non-finite f16 scales, a q8_0 value of -128, the version, an
//     unknown rodimus.quant key, a U8 tensor without an entry, an entry without a tensor or on a
//     non-U8 tensor, malformed entries;
//   - save_checkpoint refuses to write into the folder it loaded from;
//   - the layout a saved checkpoint's quantised tensors are kept in (saved_quant_layout): the
//     decode layout, copied, but never where `memory` fell back to the mapping (a checkpoint
//     larger than physical memory: blocks in place), nor under `mapped` when they exceed it.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cases/model_cases.hpp"
#include "rodimus/backend/cpu/all.hpp"
#include "rodimus/model/backend_weights.hpp"
#include "rodimus/model/init.hpp"
#include "rodimus/model/save_checkpoint.hpp"
#include "rodimus/model/weights.hpp"
#include "support/cli_support.hpp"
#include "support/temp_dir.hpp"
#include "support/test_support.hpp"

using namespace rodimus;
using test::expect_error;
using test::temp_dir;

namespace {

std::string tiny_coder() { return test::source_dir() + "/examples/models/tiny-coder"; }
std::string plus_tiny() { return test::golden_dir() + "/rodimus_plus_tiny"; }
/// A random one-layer Rodimus+ of D = 512 (the golden one's configuration otherwise), written once.
std::string plus_wide() {
  static const test::temp_dir dir;
  static const bool written = [] {
    nlohmann::json c = nlohmann::json::parse(test::slurp(plus_tiny() + "/config.json"));
    c["d_model"] = 512;
    c["n_layer"] = 1;
    write_random_checkpoint(dir.str(), c.dump(2) + "\n", dtype::bf16, 1);
    return true;
  }();
  (void)written;
  return dir.str();
}

/// Every tensor name the model uses (the tied head under lm_head.weight too).
std::vector<std::string> used_names(const model_weights& w) {
  std::vector<std::string> out;
  for (const auto& e : expected_tensors(w.config()))
    out.push_back(e.name);
  if (w.config().tie_word_embeddings) out.push_back("lm_head.weight");
  return out;
}

/// The two models hold the same matrices, byte for byte, in the same formats.
void check_same_weights(const model_weights& a, const model_weights& b) {
  CHECK(a.dtype_counts() == b.dtype_counts());
  std::size_t quantised = 0;
  for (const std::string& name : used_names(a)) {
    INFO("tensor " << name);
    const weight_matrix* qa = a.quantised_matrix_of(name);
    const weight_matrix* qb = b.quantised_matrix_of(name);
    REQUIRE((qa == nullptr) == (qb == nullptr));
    if (!qa) continue;
    ++quantised;
    CHECK(qa->format == qb->format);
    CHECK(qa->type == qb->type);
    CHECK(qa->rows == qb->rows);
    CHECK(qa->cols == qb->cols);
    CHECK(qa->layout == qb->layout);
    REQUIRE(qa->bytes() == qb->bytes());
    CHECK(std::memcmp(qa->data, qb->data, qa->bytes()) == 0);
  }
  CHECK(quantised > 0);
}

/// Logits (B, T, V) of fresh random ids through prefill (T / 2 tokens) then decode steps.
template <class Backend>
std::vector<float> some_logits(const model_weights& w, const Backend& be,
                               const std::vector<std::int64_t>& ids, index_t B, index_t T) {
  model_runner<Backend> runner(w, be);
  return sequence_logits(runner, ids, B, T, T / 2);
}

void check_same_logits(const model_weights& a, const model_weights& b) {
  const index_t B = 2, T = 12, V = a.config().vocab_size;
  auto g = test::rng(1201);
  std::uniform_int_distribution<std::int64_t> id(0, V - 1);
  std::vector<std::int64_t> ids(std::size_t(B * T));
  for (auto& x : ids)
    x = id(g);
  thread_pool pool(2);
  const auto check = [&](const std::vector<float>& x, const std::vector<float>& y,
                         const char* backend) {
    INFO("backend " << backend);
    REQUIRE(x.size() == std::size_t(B * T * V));
    REQUIRE(y.size() == x.size());
    std::size_t differ = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
      differ += std::memcmp(&x[i], &y[i], sizeof(float)) != 0;
    CHECK(differ == 0);
  };
  check(some_logits(a, scalar{}, ids, B, T), some_logits(b, scalar{}, ids, B, T), "scalar");
  check(some_logits(a, cpu<>{&pool}, ids, B, T), some_logits(b, cpu<>{&pool}, ids, B, T), "cpu");
}

/// A saved file's tensors and metadata, to write changed copies of it.
struct saved {
  io::safetensors_file file;
  std::vector<io::tensor_to_write> tensors;
  std::map<std::string, std::string> metadata;
  std::vector<std::vector<unsigned char>> owned; // bytes of changed tensors

  explicit saved(const std::string& dir)
      : file(io::safetensors_file::open(dir + "/model.safetensors")), metadata(file.metadata()) {
    for (const io::tensor_info& t : file.tensors())
      tensors.push_back({t.name, t.type, t.shape, t.bytes});
  }
  io::tensor_to_write& at(const std::string& name) {
    for (auto& t : tensors)
      if (t.name == name) return t;
    FAIL("no tensor " << name);
    return tensors[0];
  }
  /// A writable copy of tensor `name`'s bytes (the tensor then points at it).
  unsigned char* own(const std::string& name) {
    io::tensor_to_write& t = at(name);
    const io::tensor_info& info = file.at(name);
    owned.emplace_back(info.bytes, info.bytes + (info.end - info.begin));
    t.bytes = owned.back().data();
    return owned.back().data();
  }
  void drop(const std::string& name) {
    for (std::size_t i = 0; i < tensors.size(); ++i)
      if (tensors[i].name == name) {
        tensors.erase(tensors.begin() + std::ptrdiff_t(i));
        return;
      }
    FAIL("no tensor " << name);
  }
  /// Write this as the checkpoint in `dir` (config.json from `config_dir`).
  void write(const temp_dir& dir, const std::string& config_dir) const {
    std::filesystem::copy_file(config_dir + "/config.json", dir.file("config.json"),
                               std::filesystem::copy_options::overwrite_existing);
    io::write_safetensors(dir.file("model.safetensors"), tensors, metadata);
  }
};

const char* kFc = "model.layers.0.mixer.fc.weight";   // [2E, D], q8_0 in the q8 save
const char* kQ = "model.layers.1.attn.q_proj.weight"; // [H d_h, D]
const char* kKey = "rodimus.quant.tensor.model.layers.0.mixer.fc.weight";
const char* kDown = "model.layers.0.ffn.out_proj.weight"; // [D, F]: F = 176 in rodimus_plus_tiny
const char* kDownKey = "rodimus.quant.tensor.model.layers.0.ffn.out_proj.weight";

} // namespace

TEST_CASE("saved quantised checkpoints load directly: same blocks, same logits (scalar, cpu)") {
  for (const std::string& src : {tiny_coder(), plus_tiny(), plus_wide()}) {
    for (const char* preset : {"q8", "q4"}) {
      INFO("model " << src << ", --weights " << preset);
      const quant_policy policy = quant_policy::parse(preset);
      const model_weights w = model_weights::load(src, weight_placement::memory, {}, policy);
      REQUIRE(w.quantised());
      temp_dir out;
      save_checkpoint(w, out.str());

      // The header alone says what each quantised tensor is.
      const auto f = io::safetensors_file::open(out.file("model.safetensors"));
      CHECK(f.metadata().at("rodimus.quant.version") == "1");
      const weight_matrix* fc = w.quantised_matrix_of(kFc);
      REQUIRE(fc);
      CHECK(f.metadata().at(kKey) ==
            std::string("{\"dtype\":\"") + io::safetensors_dtype_name(fc->type) +
                "\",\"format\":\"" + to_string(fc->format) + "\",\"shape\":[" +
                std::to_string(fc->rows) + "," + std::to_string(fc->cols) + "]}");
      CHECK(f.at(kFc).type == dtype::u8);
      // Every quantised matrix is in the decode layout in memory and saved as blocks: the file
      // holds exactly what quantising the checkpoint's rows gives (the layout undone).
      index_t grouped = 0;
      for (const std::string& name : used_names(w)) {
        const weight_matrix* m = w.quantised_matrix_of(name);
        if (!m) continue;
        INFO("tensor " << name);
        CHECK(m->layout == quant_layout::groups16);
        grouped += quant_groups(quant_blocks(m->cols), m->layout);
        const std::vector<float> rows = w.checkpoint().read<float>(
            name == "lm_head.weight" && !w.checkpoint().find(name) ? "model.embeddings.weight"
                                                                   : name);
        std::vector<unsigned char> blocks(m->bytes());
        for (index_t r = 0; r < m->rows; ++r) {
          unsigned char* row = blocks.data() + std::size_t(r) * m->row_bytes();
          const float* in = rows.data() + r * m->cols;
          if (m->format == weight_format::q8_0)
            REQUIRE(quantise_row(in, m->cols, reinterpret_cast<q8_0_block*>(row)).ok());
          else
            REQUIRE(quantise_row(in, m->cols, reinterpret_cast<q4_0_block*>(row)).ok());
        }
        REQUIRE(std::size_t(f.at(name).end - f.at(name).begin) == blocks.size());
        CHECK(std::memcmp(f.at(name).bytes, blocks.data(), blocks.size()) == 0);
      }
      if (src == plus_wide()) CHECK(grouped > 0); // whole groups were laid out and undone
      CHECK(f.at(kFc).shape ==
            std::vector<std::int64_t>{fc->rows, fc->cols / 32,
                                      std::int64_t(quant_block_bytes(fc->format))});
      if (src == plus_tiny()) { // a row length that is not a multiple of 32: quantised, padded
        const weight_matrix* down = w.quantised_matrix_of(kDown);
        REQUIRE(down);
        CHECK(down->cols == 176);
        CHECK(down->format ==
              (std::string(preset) == "q8" ? weight_format::q8_0 : weight_format::q4_0));
        CHECK(down->bytes() == std::size_t(down->rows * 6) * quant_block_bytes(down->format));
        CHECK(f.at(kDown).shape ==
              std::vector<std::int64_t>{down->rows, 6,
                                        std::int64_t(quant_block_bytes(down->format))});
        CHECK(f.metadata().at(kDownKey).find("\"shape\":[" + std::to_string(down->rows) +
                                             ",176]") != std::string::npos);
      }
      // Stored tensors are the checkpoint's bytes; the side files are copied.
      const io::tensor_info& norm = f.at("model.norm_f.weight");
      const io::tensor_info& norm0 = w.checkpoint().at("model.norm_f.weight");
      CHECK(norm.type == norm0.type);
      REQUIRE(norm.end - norm.begin == norm0.end - norm0.begin);
      CHECK(std::memcmp(norm.bytes, norm0.bytes, norm.end - norm.begin) == 0);
      CHECK(test::slurp(out.file("config.json")) == test::slurp(src + "/config.json"));
      if (std::filesystem::exists(src + "/tokenizer.json"))
        CHECK(test::slurp(out.file("tokenizer.json")) == test::slurp(src + "/tokenizer.json"));

      const model_weights back = model_weights::load(out.str());
      CHECK(back.stored_quantised().size() > 0);
      CHECK(!back.quant().any());
      check_same_weights(w, back);
      check_same_logits(w, back);
      const model_weights mapped =
          model_weights::load(out.str(), weight_placement::mapped, {}, policy);
      check_same_weights(w, mapped);
      check_same_logits(w, mapped);

      // Saving the loaded file again gives the same file.
      temp_dir again;
      save_checkpoint(back, again.str());
      CHECK(test::slurp(again.file("model.safetensors")) ==
            test::slurp(out.file("model.safetensors")));
    }
  }
}

TEST_CASE("a quantised checkpoint and --weights: the same format loads, another is an error") {
  const model_weights w =
      model_weights::load(tiny_coder(), weight_placement::memory, {}, quant_policy::parse("q4"));
  temp_dir out;
  save_checkpoint(w, out.str());
  expect_error(
      [&] {
        model_weights::load(out.str(), weight_placement::memory, {}, quant_policy::parse("q8"));
      },
      {out.str(), "'lm_head.weight'", "stored quantised as q4_0", "gives it q8_0",
       "never re-quantised"});
  // A policy that leaves the projections stored disagrees too (q4_0 in the file), though it
  // agrees on the head.
  quant_policy head_only;
  head_only.lm_head = weight_format::q4_0;
  expect_error([&] { model_weights::load(out.str(), weight_placement::memory, {}, head_only); },
               {"q4_0", "gives it stored"});
  // The CUDA backend's check refuses a checkpoint saved quantised as it refuses the policy.
  const model_weights back = model_weights::load(out.str());
  CHECK(back.quantised());
  expect_error([&] { refuse_quantised_weights(back); }, {"quantised weights", "not supported"});
}

TEST_CASE("a checkpoint saved with the channel gate's up projection in q8_0 (the presets from "
          "d8f016d) loads as the file says") {
  // From d8f016d the presets put ch_gate_proj.1 (W1) in q8_0 with the other low-rank
  // projections; now it is a class of its own that they leave stored. A file saved then holds W1
  // in q8_0: with no policy it loads with each tensor in the format the file gives it, and gives
  // the logits of that policy quantising at load, bit for bit.
  quant_policy previous = quant_policy::parse("q4");
  previous.channel_gate_up = weight_format::q8_0;
  const model_weights w = model_weights::load(tiny_coder(), weight_placement::memory, {}, previous);
  temp_dir out;
  save_checkpoint(w, out.str());
  const model_weights back = model_weights::load(out.str());
  CHECK(!back.quant().any());
  for (const layer_weights& L : back.layers()) {
    CHECK(L.mixer.ch_gate_up.format == weight_format::q8_0);
    CHECK(L.mixer.ch_gate_down.format == weight_format::q8_0);
    CHECK(L.mixer.fc.format == weight_format::q4_0);
  }
  check_same_weights(w, back);
  check_same_logits(w, back);
  // The current presets disagree with the file on W1 (blocks are never re-quantised, nor
  // dequantised): named, as any other disagreement.
  expect_error(
      [&] {
        model_weights::load(out.str(), weight_placement::memory, {}, quant_policy::parse("q4"));
      },
      {out.str(), "ch_gate_proj.1.weight", "stored quantised as q8_0", "gives it stored"});
  // The current preset's own file holds W1 as the checkpoint stores it (bf16), byte for byte.
  const model_weights now =
      model_weights::load(tiny_coder(), weight_placement::memory, {}, quant_policy::parse("q4"));
  temp_dir out_now;
  save_checkpoint(now, out_now.str());
  const auto saved = io::safetensors_file::open(out_now.file("model.safetensors"));
  const auto original = io::safetensors_file::open(tiny_coder() + "/model.safetensors");
  const std::string up = "model.layers.0.mixer.inner_mixer.ch_gate_proj.1.weight";
  REQUIRE(saved.at(up).type == original.at(up).type);
  REQUIRE(saved.at(up).shape == original.at(up).shape);
  CHECK(std::memcmp(saved.at(up).bytes, original.at(up).bytes,
                    saved.at(up).end - saved.at(up).begin) == 0);
  check_same_logits(now, model_weights::load(out_now.str()));
}

TEST_CASE("quantising at load: rows in parallel chunks, the lowest row that cannot be quantised "
          "is the error") {
  // plus_wide's mixer fc has 2E >= 1024 rows: several chunks of rows wherever the machine has more
  // than one hardware thread. Two rows far apart get a value past what a q4_0 block's f16 scale
  // holds (65504 * 8); the error names the tensor and the lower row, whichever chunk ends first.
  saved file(plus_wide());
  const io::tensor_info& fc = file.file.at(kFc);
  REQUIRE(fc.type == dtype::bf16);
  const index_t rows = fc.shape[0], cols = fc.shape[1];
  REQUIRE(rows >= 1024);
  auto g = test::rng(1311);
  const index_t low = std::uniform_int_distribution<index_t>(1, rows / 4)(g);
  const index_t high = std::uniform_int_distribution<index_t>(rows / 2, rows - 1)(g);
  const index_t col = std::uniform_int_distribution<index_t>(0, cols - 1)(g);
  bf16* w = reinterpret_cast<bf16*>(file.own(kFc));
  w[std::size_t(high * cols + col)] = bf16(1.0e7f);
  w[std::size_t(low * cols + col)] = bf16(-3.0e7f);
  temp_dir dir;
  file.write(dir, plus_wide());
  expect_error(
      [&] {
        model_weights::load(dir.str(), weight_placement::memory, {}, quant_policy::parse("q4"));
      },
      {dir.str(), std::string("'") + kFc + "'", "row " + std::to_string(low) + " ", "q4_0",
       "exceeds the f16 range"});
  // Stored, the same file loads (the values are finite).
  CHECK_NOTHROW(model_weights::load(dir.str()));
}

TEST_CASE("quantising at load: the same blocks on 1, 2, 3 and 7 threads (quant_threads), each "
          "row what quantise_row gives") {
  // A fresh random one-layer Rodimus+ of D = 512 (a new seed each run, printed): its mixer fc has
  // 2E = 2048 rows, so 2, 3 and 7 threads split it into 2, 3 and 7 uneven chunks. Tolerance: none;
  // every block is compared byte for byte, on 1 thread against the scalar quantise_row of the
  // checkpoint's rows, on the others against 1 thread.
  const std::uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  nlohmann::json c = nlohmann::json::parse(test::slurp(plus_tiny() + "/config.json"));
  c["d_model"] = 512;
  c["n_layer"] = 1;
  temp_dir dir;
  write_random_checkpoint(dir.str(), c.dump(2) + "\n", dtype::bf16, seed);
  for (const char* preset : {"q8", "q4"}) {
    INFO("--weights " << preset);
    const quant_policy policy = quant_policy::parse(preset);
    const model_weights one =
        model_weights::load(dir.str(), weight_placement::memory, {}, policy, 1);
    index_t checked = 0;
    for (const std::string& name : used_names(one)) {
      const weight_matrix* m = one.quantised_matrix_of(name);
      if (!m) continue;
      INFO("tensor " << name);
      const std::vector<float> rows = one.checkpoint().read<float>(
          name == "lm_head.weight" && !one.checkpoint().find(name) ? "model.embeddings.weight"
                                                                   : name);
      const index_t nb = quant_blocks(m->cols);
      const auto same_as_reference = [&](auto block) {
        using Block = decltype(block);
        const quant_rows_view<Block> view = m->quant_rows<Block>();
        const std::size_t n = std::size_t(nb);
        std::vector<Block> want(n), got(n);
        index_t bad = 0;
        for (index_t r = 0; r < m->rows; ++r) {
          REQUIRE(quantise_row(rows.data() + r * m->cols, m->cols, want.data()).ok());
          view.unpack_row(r, got.data());
          bad += std::memcmp(want.data(), got.data(), want.size() * sizeof(Block)) != 0;
        }
        CHECK(bad == 0);
      };
      if (m->format == weight_format::q8_0)
        same_as_reference(q8_0_block{});
      else
        same_as_reference(q4_0_block{});
      checked += m->rows >= 2048;
    }
    CHECK(checked > 0);
    for (unsigned threads : {2u, 3u, 7u}) {
      INFO(threads << " threads");
      check_same_weights(
          one, model_weights::load(dir.str(), weight_placement::memory, {}, policy, threads));
    }
    // 0, the default: one per hardware thread.
    check_same_weights(one, model_weights::load(dir.str(), weight_placement::memory, {}, policy));
  }
}

TEST_CASE("saved quantised tensors: copied into the decode layout unless memory is short") {
  const double gib = 1024.0 * 1024.0 * 1024.0;
  const auto memory = weight_placement::memory, mapped = weight_placement::mapped;
  CHECK(saved_quant_layout(memory, false, 2 * gib, 8 * gib) == quant_layout::groups16);
  // The fallback to the mapping (the whole checkpoint exceeds physical memory): never copied,
  // even when the quantised tensors alone would fit.
  CHECK(saved_quant_layout(memory, true, 2 * gib, 8 * gib) == quant_layout::blocks);
  CHECK(saved_quant_layout(memory, true, 2 * gib, 0) == quant_layout::blocks);
  // An explicit mapping: copied while they fit (unknown physical memory: taken to fit).
  CHECK(saved_quant_layout(mapped, false, 2 * gib, 8 * gib) == quant_layout::groups16);
  CHECK(saved_quant_layout(mapped, false, 8 * gib, 8 * gib) == quant_layout::groups16);
  CHECK(saved_quant_layout(mapped, false, 9 * gib, 8 * gib) == quant_layout::blocks);
  CHECK(saved_quant_layout(mapped, false, 9 * gib, 0) == quant_layout::groups16);
}

TEST_CASE("save_checkpoint: not into the folder it loaded from, not onto a file") {
  const model_weights w =
      model_weights::load(tiny_coder(), weight_placement::mapped, {}, quant_policy::parse("q8"));
  expect_error([&] { save_checkpoint(w, tiny_coder()); }, {"folder it was loaded from"});
  temp_dir d;
  d.write("file", std::string("x"));
  expect_error([&] { save_checkpoint(w, d.file("file")); }, {"not a folder"});
}

TEST_CASE("malformed quantised checkpoints: each error names the tensor and what is wrong") {
  const model_weights w =
      model_weights::load(plus_tiny(), weight_placement::memory, {}, quant_policy::parse("q8"));
  temp_dir good;
  save_checkpoint(w, good.str());
  const weight_matrix& fc = *w.quantised_matrix_of(kFc);
  const std::int64_t N = fc.rows, K = fc.cols, nb = K / 32;
  const auto load_bad = [&](const saved& s) {
    temp_dir bad;
    s.write(bad, plus_tiny());
    model_weights::load(bad.str());
  };
  const auto check_bad = [&](const char* what, const std::function<void(saved&)>& change,
                             const std::vector<std::string>& words) {
    INFO("case: " << std::string(what));
    saved s(good.str());
    change(s);
    expect_error([&] { load_bad(s); }, words);
  };
  const std::string fc_name = std::string("'") + kFc + "'";

  check_bad("unknown format",
            [&](saved& s) {
              s.metadata[kKey] = "{\"dtype\":\"F32\",\"format\":\"q5_1\",\"shape\":[" +
                                 std::to_string(N) + "," + std::to_string(K) + "]}";
            },
            {fc_name, "unknown format", "q5_1"});
  check_bad("blocks of 17 bytes under a q8_0 entry (34)",
            [&](saved& s) {
              s.at(kFc).shape = {2 * N, nb, 17};
            },
            {fc_name, "has shape [" + std::to_string(2 * N) + ", " + std::to_string(nb) + ", 17]",
             "q8_0", "need [" + std::to_string(N) + ", " + std::to_string(nb) + ", 34]"});
  check_bad("one block missing from each row",
            [&](saved& s) {
              s.at(kFc).shape = {N, nb - 1, 34};
              s.own(kFc); // the same bytes, fewer of them written
              s.owned.back().resize(std::size_t(N * (nb - 1) * 34));
              s.at(kFc).bytes = s.owned.back().data();
            },
            {fc_name, "has shape [" + std::to_string(N) + ", " + std::to_string(nb - 1) + ", 34]"});
  // K % 32 != 0: the FFN down projection, [D, F] with F = 176 (6 blocks per row, the last of 16
  // values). A U8 shape of 5 blocks a row is refused by the file's own check; a file consistent in
  // itself (K = 160 and 5 blocks) by the config's K (176); padding past K must be zero.
  const weight_matrix& down = *w.quantised_matrix_of(kDown);
  const std::int64_t D = w.config().d_model, F = w.config().ffn_hidden();
  REQUIRE(down.rows == D);
  REQUIRE(down.cols == F);
  REQUIRE(F % 32 != 0);
  const std::int64_t fb = (F + 31) / 32;
  const std::string down_name = std::string("'") + kDown + "'";
  const auto blocks_per_row = [&](saved& s, std::int64_t nb_row) { // the first nb_row of each row
    const unsigned char* from = s.file.at(kDown).bytes;
    s.owned.emplace_back();
    for (std::int64_t r = 0; r < D; ++r)
      s.owned.back().insert(s.owned.back().end(), from + r * fb * 34,
                            from + (r * fb + std::min(nb_row, fb)) * 34);
    s.owned.back().resize(std::size_t(D * nb_row * 34));
    s.at(kDown).shape = {D, nb_row, 34};
    s.at(kDown).bytes = s.owned.back().data();
  };
  check_bad("K = 176 with 5 blocks a row (ceil(176 / 32) = 6)",
            [&](saved& s) { blocks_per_row(s, fb - 1); },
            {down_name, "has shape [" + std::to_string(D) + ", " + std::to_string(fb - 1) + ", 34]",
             "need [" + std::to_string(D) + ", " + std::to_string(fb) + ", 34]",
             "ceil(K / 32) = " + std::to_string(fb)});
  check_bad("K = 176 with 7 blocks a row", [&](saved& s) { blocks_per_row(s, fb + 1); },
            {down_name, "has shape [" + std::to_string(D) + ", " + std::to_string(fb + 1) + ", 34]",
             "need [" + std::to_string(D) + ", " + std::to_string(fb) + ", 34]"});
  check_bad("K = 160 and 5 blocks a row where the config's K is 176",
            [&](saved& s) {
              blocks_per_row(s, fb - 1);
              s.metadata[kDownKey] = quant_entry_text({weight_format::q8_0, D, F - 16, dtype::f32});
            },
            {down_name, "logical shape [" + std::to_string(D) + ", " + std::to_string(F - 16) + "]",
             "expected [" + std::to_string(D) + ", " + std::to_string(F) + "]"});
  check_bad("padding past K that is not zero",
            [&](saved& s) { s.own(kDown)[(2 * fb + fb - 1) * 34 + 2 + F % 32 + 3] = 1; },
            {down_name, "block " + std::to_string(fb - 1) + " of row 2", "padding past K"});
  check_bad("a logical shape the config does not expect",
            [&](saved& s) {
              s.metadata[kKey] = "{\"dtype\":\"F32\",\"format\":\"q8_0\",\"shape\":[" +
                                 std::to_string(N / 2) + "," + std::to_string(K * 2) + "]}";
              s.at(kFc).shape = {N / 2, nb * 2, 34};
            },
            {fc_name, "logical shape [" + std::to_string(N / 2), "expected [" + std::to_string(N)});

  // Tensors the model reads stored: the embedding table (gathered) and a norm.
  const auto quantise_into = [&](saved& s, const std::string& name, std::int64_t rows,
                                 std::int64_t cols) {
    const std::vector<float> x = w.checkpoint().read<float>(name);
    s.owned.emplace_back(std::size_t(rows * quant_blocks(cols)) * sizeof(q8_0_block));
    auto* blocks = reinterpret_cast<q8_0_block*>(s.owned.back().data());
    for (std::int64_t r = 0; r < rows; ++r)
      REQUIRE(quantise_row(x.data() + r * cols, cols, blocks + r * quant_blocks(cols)).ok());
    io::tensor_to_write& t = s.at(name);
    t.type = dtype::u8;
    t.shape = {rows, quant_blocks(cols), 34};
    t.bytes = s.owned.back().data();
    s.metadata["rodimus.quant.tensor." + name] =
        quant_entry_text({weight_format::q8_0, rows, cols, dtype::f32});
  };
  const std::int64_t V = w.config().vocab_size;
  check_bad("quantised embeddings",
            [&](saved& s) { quantise_into(s, "model.embeddings.weight", V, D); },
            {"'model.embeddings.weight'", "stored quantised (q8_0)", "reads it unquantised"});
  check_bad("a quantised norm", [&](saved& s) { quantise_into(s, "model.norm_f.weight", 1, D); },
            {"'model.norm_f.weight'", "reads it unquantised"});

  // Non-finite scales (+inf, NaN) and a q8_0 value outside [-127, 127], in row 3, block 1.
  for (const std::uint16_t scale : {std::uint16_t(0x7C00), std::uint16_t(0x7E01)}) {
    check_bad("non-finite scale",
              [&](saved& s) {
                unsigned char* p = s.own(kQ) + (3 * (D / 32) + 1) * 34;
                std::memcpy(p, &scale, 2);
              },
              {"'model.layers.1.attn.q_proj.weight'", "block 1 of row 3", "scale is not finite"});
  }
  check_bad("q8_0 value -128", [&](saved& s) { s.own(kQ)[(3 * (D / 32) + 1) * 34 + 2 + 7] = 0x80; },
            {"'model.layers.1.attn.q_proj.weight'", "block 1 of row 3", "-128"});

  check_bad("version 2", [&](saved& s) { s.metadata["rodimus.quant.version"] = "2"; },
            {"version '2'", "not supported", "reads version 1"});
  check_bad("no version", [&](saved& s) { s.metadata.erase("rodimus.quant.version"); },
            {"quantised tensor '", "no rodimus.quant.version"});
  check_bad("unknown key", [&](saved& s) { s.metadata["rodimus.quant.scale_type"] = "f16"; },
            {"unknown metadata key 'rodimus.quant.scale_type'"});
  check_bad("U8 tensor without an entry", [&](saved& s) { s.metadata.erase(kKey); },
            {fc_name, "dtype U8", "no quantised format"});
  check_bad("entry without a tensor",
            [&](saved& s) {
              s.metadata["rodimus.quant.tensor.model.layers.9.mixer.fc.weight"] = s.metadata[kKey];
            },
            {"'model.layers.9.mixer.fc.weight'", "holds no such tensor"});
  check_bad("entry on an F32 tensor",
            [&](saved& s) {
              s.metadata["rodimus.quant.tensor.model.embeddings.weight"] =
                  quant_entry_text({weight_format::q8_0, V, D, dtype::f32});
            },
            {"'model.embeddings.weight'", "dtype F32", "expected U8"});
  check_bad("entry that is not JSON", [&](saved& s) { s.metadata[kKey] = "q8_0"; },
            {fc_name, "JSON"});
  check_bad("entry without dtype",
            [&](saved& s) {
              s.metadata[kKey] = "{\"format\":\"q8_0\",\"shape\":[" + std::to_string(N) + "," +
                                 std::to_string(K) + "]}";
            },
            {fc_name, "exactly \"format\", \"shape\" and \"dtype\""});
  check_bad("entry with a bad source dtype",
            [&](saved& s) {
              s.metadata[kKey] = "{\"dtype\":\"I32\",\"format\":\"q8_0\",\"shape\":[" +
                                 std::to_string(N) + "," + std::to_string(K) + "]}";
            },
            {fc_name, "must be F32, BF16 or F16", "I32"});
  check_bad("entry with a negative shape",
            [&](saved& s) {
              s.metadata[kKey] = "{\"dtype\":\"F32\",\"format\":\"q8_0\",\"shape\":[-1," +
                                 std::to_string(K) + "]}";
            },
            {fc_name, "two non-negative integers"});

  // A file cut short: the safetensors check names the tensor that runs past the end.
  {
    const std::string bytes = test::slurp(good.file("model.safetensors"));
    temp_dir bad;
    std::filesystem::copy_file(plus_tiny() + "/config.json", bad.file("config.json"));
    bad.write("model.safetensors", bytes.data(), bytes.size() - 100);
    expect_error([&] { model_weights::load(bad.str()); },
                 {"'lm_head.weight'", "outside the data section"});
  }
}
