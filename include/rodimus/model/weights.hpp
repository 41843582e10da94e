// The parameters of a Rodimus / Rodimus+ checkpoint (docs/MODEL.md §7.2, §11.1), checked against
// the configuration and held ready for the blocks.
//
// Validation (all problems are collected and reported in one rodimus::error naming the checkpoint):
//   - every tensor the configuration implies exists with its shape (missing / misshapen: each name
//     with the expected and the found shape);
//   - no unexpected tensor (each is listed). With tied embeddings there is no lm_head; a stored
//     duplicate `lm_head.weight` of shape [V, D] is accepted and ignored;
//   - dtypes F32, BF16 or F16 only (anything else names the tensor and its dtype);
//   - before any of that, n_layer against the layers the checkpoint holds (a config asking for 16
//     million layers must not build a list of 200 million expected tensors first);
//   - every value finite: the first tensor holding a NaN or an infinity is named (every logit
//     would be NaN).
// The problem list shows the first max_listed_problems and counts the rest.
// Big matrices (embeddings, projections, lm_head) keep their stored dtype. Where they live is the
// caller's choice (weight_placement): copied once into anonymous memory on 2 MiB pages (`memory`,
// the default: a decode step streams every matrix, and reading the file mapping directly ran
// several times slower on the build machine, bench/results/README.md), or used in place in the
// file mapping (`mapped`: no copy, pages shared with other processes; copied only when the file
// leaves a matrix misaligned; also what `memory` falls back to when the weights exceed the
// machine's physical memory). Small vectors (norm weights, biases, the conv kernel,
// residual_weight) are converted to f32 on load.
// Quantisation (`quant`, model/quant_policy.hpp; default none): the matrices the policy names are
// quantised from the checkpoint into one more block of memory on huge pages (q8_0 / q4_0, whatever
// the placement); a tied head the policy quantises gets a quantised copy of the embeddings, the
// embedding gather keeps the stored table.
// A checkpoint saved quantised (model/save_checkpoint.hpp; layout in model/quant_file.hpp and
// docs/QUANT.md) loads directly: its U8 block tensors are validated (read_quant_entries) and used
// as stored, never re-quantised, copied into that same block of memory (also with an explicit
// `mapped`, while they fit physical memory: see below), or, where `memory` fell back to the mapping
// (a checkpoint larger than physical memory), used in place in the mapping as blocks
// (saved_quant_layout, model/weight_placement.hpp: copying them would risk the OOM killer).
// Every quantised matrix copied into memory has its rows rearranged in place into the decode
// layout (quant_layout::groups16, rodimus/primitives/quant_layout.hpp: the same bytes, the scales
// of 16 blocks apart from their integers; weight_matrix::layout says which), which the decode
// kernels read several times faster than the blocks; the blocks are not kept (save_checkpoint
// unpacks rows again, exactly), so the layout costs no memory. The decode layout is the point of
// quantised weights, and one layout for `memory` and `mapped` keeps their logits bit-identical;
// rows left in place as blocks take the block kernels (the same results up to the order of f32
// sums). Only the linear layers' weights may be quantised there (the projections,
// the low-rank projections and the head: a quantised embedding table, norm or conv kernel is
// refused); a tied model's quantised `lm_head.weight` is its head (the gather reads the stored
// embeddings). With a policy (`quant`) the file must agree: a matrix the file holds quantised must
// be the format the policy gives it (an error names the tensor and both formats otherwise: blocks
// are never re-quantised); a matrix the file holds stored is quantised as the policy says. With no
// policy (the default) the file loads as it is.
//
// Names relative to `model.layers.{i}.` (E = d_inner, N = mem_size, R = low rank, F = FFN size,
// H/Hk/Hv heads of dim d_h, W = d_conv):
//   mixer_norm.weight [D]
//   mixer.fc.weight [2E, D]   mixer.out_proj.weight [D, E]   mixer.act_norm.weight [E]
//   mixer.inner_mixer.residual_weight [E]
//   mixer.inner_mixer.short_conv.conv1d.weight [E, 1, W], .bias [E]
//   mixer.inner_mixer.in_proj.weight [2N, E]
//   mixer.inner_mixer.mem_gate_proj.weight [2N, E], .bias [2N]
//   mixer.inner_mixer.ch_gate_proj.0.weight [R, E], ch_gate_proj.1.weight [E, R], .1.bias [E]
//   rodimus_plus: attn_norm.weight [D], attn.{q,k,v}_proj.weight [H d_h | Hk d_h | Hv d_h, D],
//     attn.out_proj.weight [D, H d_h], ffn_norm.weight [D], ffn.fc.weight [2F, D],
//     ffn.out_proj.weight [D, F]
// Global: model.embeddings.weight [V, D], model.norm_f.weight [D], lm_head.weight [V, D] (untied),
// model.embed_norm.weight [D] (use_norm_embedding).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "rodimus/backend/cpu/huge_page_buffer.hpp"
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/error.hpp"
#include "rodimus/core/finite.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/io/checkpoint.hpp"
#include "rodimus/io/config.hpp"
#include "rodimus/model/config.hpp"
#include "rodimus/model/quant_file.hpp"
#include "rodimus/model/quant_policy.hpp"
#include "rodimus/model/weight_placement.hpp"
#include "rodimus/model/weight_views.hpp"

namespace rodimus {

/// One expected tensor: its name and shape.
struct expected_tensor {
  std::string name;
  std::vector<std::int64_t> shape;
};

/// Every tensor the configuration implies, in a fixed order (lm_head only when untied).
inline std::vector<expected_tensor> expected_tensors(const model_config& c) {
  const std::int64_t D = c.d_model, E = c.d_inner(), N = c.mem_size, R = c.low_rank(),
                     V = c.vocab_size;
  std::vector<expected_tensor> out;
  out.push_back({"model.embeddings.weight", {V, D}});
  if (c.use_norm_embedding) out.push_back({"model.embed_norm.weight", {D}});
  for (std::int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    const std::string m = p + "mixer.";
    const std::string im = m + "inner_mixer.";
    out.push_back({p + "mixer_norm.weight", {D}});
    out.push_back({m + "act_norm.weight", {E}});
    out.push_back({m + "fc.weight", {2 * E, D}});
    out.push_back({m + "out_proj.weight", {D, E}});
    out.push_back({im + "residual_weight", {E}});
    out.push_back({im + "short_conv.conv1d.weight", {E, 1, c.d_conv}});
    out.push_back({im + "short_conv.conv1d.bias", {E}});
    out.push_back({im + "in_proj.weight", {2 * N, E}});
    out.push_back({im + "ch_gate_proj.0.weight", {R, E}});
    out.push_back({im + "ch_gate_proj.1.weight", {E, R}});
    out.push_back({im + "ch_gate_proj.1.bias", {E}});
    out.push_back({im + "mem_gate_proj.weight", {2 * N, E}});
    out.push_back({im + "mem_gate_proj.bias", {2 * N}});
    if (c.is_plus()) {
      const std::int64_t dh = c.head_dim(), F = c.ffn_hidden();
      out.push_back({p + "attn_norm.weight", {D}});
      out.push_back({p + "attn.q_proj.weight", {c.heads() * dh, D}});
      out.push_back({p + "attn.k_proj.weight", {c.heads_k() * dh, D}});
      out.push_back({p + "attn.v_proj.weight", {c.heads_v() * dh, D}});
      out.push_back({p + "attn.out_proj.weight", {D, c.heads() * dh}});
      out.push_back({p + "ffn_norm.weight", {D}});
      out.push_back({p + "ffn.fc.weight", {2 * F, D}});
      out.push_back({p + "ffn.out_proj.weight", {D, F}});
    }
  }
  out.push_back({"model.norm_f.weight", {D}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {V, D}});
  return out;
}

/// The parameter count the configuration implies (a tied head is counted once).
inline std::int64_t parameter_count(const model_config& c) {
  std::int64_t n = 0;
  for (const auto& t : expected_tensors(c)) {
    std::int64_t k = 1;
    for (auto d : t.shape)
      k *= d;
    n += k;
  }
  return n;
}

class model_weights {
public:
  /// Read config.json and the checkpoint (model.safetensors or a sharded index) in `dir`.
  /// Called once, before the weights are read, when the default placement (memory) falls back to
  /// the file mapping because the weights exceed the machine's memory (the tool says so).
  using fallback_notice = std::function<void(const std::string& dir)>;

  /// `quant_threads`: the threads that quantise the matrices `quant` names (each matrix's rows in
  /// contiguous chunks, one a thread); 0 (the default) is one per hardware thread. The blocks do
  /// not depend on it. The tool passes its --threads.
  static model_weights load(const std::string& dir,
                            weight_placement placement = weight_placement::memory,
                            const fallback_notice& on_fallback = {}, const quant_policy& quant = {},
                            unsigned quant_threads = 0) {
    model_config cfg = io::load_config(dir);
    auto ckpt = std::make_shared<io::checkpoint>(io::checkpoint::open(dir));
    return from_checkpoint(std::move(cfg), std::move(ckpt), placement, on_fallback, quant,
                           quant_threads);
  }

  /// Check `ckpt` against `cfg` and build the weights (throws rodimus::error listing every
  /// problem). `quant_threads` as in load().
  static model_weights from_checkpoint(model_config cfg, std::shared_ptr<const io::checkpoint> ckpt,
                                       weight_placement placement = weight_placement::memory,
                                       const fallback_notice& on_fallback = {},
                                       const quant_policy& quant = {}, unsigned quant_threads = 0) {
    model_weights w;
    w.config_ = std::move(cfg);
    w.ckpt_ = std::move(ckpt);
    w.placement_ = placement;
    w.quant_ = quant;
    w.quant_threads_ = quant_threads;
    w.check_layer_count();
    w.read_file_quant();
    w.validate();
    w.check_quant_agreement();
    if (placement == weight_placement::memory) {
      w.reserve_memory(); // address space only: pages are committed by bind()'s copies
      if (w.placement_ == weight_placement::mapped && on_fallback) on_fallback(w.ckpt_->dir());
    }
    w.check_finite();
    w.saved_quant_layout_ =
        saved_quant_layout(placement, w.placement_ != placement, double(w.saved_quantised_bytes()),
                           physical_memory_bytes());
    w.reserve_quantised();
    w.bind();
    return w;
  }

  weight_placement placement() const noexcept { return placement_; }
  const quant_policy& quant() const noexcept { return quant_; }

  const model_config& config() const noexcept { return config_; }
  const io::checkpoint& checkpoint() const noexcept { return *ckpt_; }
  const std::string& dir() const noexcept { return ckpt_->dir(); }

  /// Every parameter as views over this object's memory (what the blocks read).
  const model_weight_views& views() const noexcept { return views_; }
  const weight_matrix& embeddings() const noexcept { return views_.embeddings; } // (V, D)
  /// (V, D), the embeddings when tied
  const weight_matrix& lm_head() const noexcept { return views_.lm_head; }
  const weight_vector& embed_norm() const noexcept { return views_.embed_norm; } // (D) or empty
  const weight_vector& norm_f() const noexcept { return views_.norm_f; }         // (D)
  const std::vector<layer_weights>& layers() const noexcept { return views_.layers; }

  /// Count of stored parameters by dtype (over the tensors the model uses; a quantised matrix
  /// under the dtype it was quantised from).
  const std::map<dtype, std::int64_t>& dtype_counts() const noexcept { return dtype_counts_; }

  /// Whether any matrix is block-quantised (by the policy at load, or as the checkpoint stores
  /// it).
  bool quantised() const noexcept { return !quantised_.empty(); }
  /// The block-quantised matrix `name` (a checkpoint name; "lm_head.weight" also for a tied
  /// model's quantised head), or nullptr when it is held in its stored dtype.
  const weight_matrix* quantised_matrix_of(const std::string& name) const {
    const auto it = quantised_.find(name);
    return it == quantised_.end() ? nullptr : &it->second;
  }
  /// The quantised tensors as the checkpoint stores them (empty unless it was saved quantised).
  const std::map<std::string, quant_tensor_entry>& stored_quantised() const noexcept {
    return file_quant_;
  }

private:
  static std::string shape_str(const std::vector<std::int64_t>& s) {
    std::string o = "[";
    for (std::size_t i = 0; i < s.size(); ++i)
      o += (i ? ", " : "") + std::to_string(s[i]);
    return o + "]";
  }

  /// The number of layers the checkpoint holds tensors for: one more than the largest i of a
  /// `model.layers.{i}.` name (0 when there is none).
  std::int64_t stored_layer_count() const {
    static const std::string prefix = "model.layers.";
    std::int64_t layers = 0;
    for (const auto& name : ckpt_->names()) {
      if (name.compare(0, prefix.size(), prefix) != 0) continue;
      std::int64_t i = 0;
      std::size_t k = prefix.size();
      for (; k < name.size() && k < prefix.size() + 12 && name[k] >= '0' && name[k] <= '9'; ++k)
        i = i * 10 + (name[k] - '0');
      if (k > prefix.size() && k < name.size() && name[k] == '.') layers = std::max(layers, i + 1);
    }
    return layers;
  }

  /// n_layer against the checkpoint, before validate() lists every tensor n_layer implies.
  void check_layer_count() const {
    const std::int64_t stored = stored_layer_count();
    if (config_.n_layer > stored)
      throw error(ckpt_->dir() + ": checkpoint does not match config.json: n_layer is " +
                  std::to_string(config_.n_layer) + " but the checkpoint holds tensors for " +
                  std::to_string(stored) + " layer" + (stored == 1 ? "" : "s") +
                  " (no tensor named model.layers." + std::to_string(stored) + ".*)");
  }

  /// Refuse NaN and infinity in every floating-point tensor, naming the first (in file order).
  void check_finite() const {
    for (const io::safetensors_file& f : ckpt_->files())
      for (const io::tensor_info& t : f.tensors()) {
        const std::size_t n = std::size_t(t.numel());
        const std::size_t at = first_non_finite(t.type, t.bytes, n);
        if (at < n)
          throw error(ckpt_->dir() + ": tensor '" + t.name + "' holds a non-finite value (" +
                      non_finite_kind(t.type, t.bytes, at) + ") at element " + std::to_string(at) +
                      ": the weights are corrupt");
      }
  }
  static constexpr std::size_t max_listed_problems = 20;

  void validate() {
    const auto want = expected_tensors(config_);
    std::set<std::string> wanted;
    std::vector<std::string> problems;
    for (const auto& e : want) {
      wanted.insert(e.name);
      const io::tensor_info* t = ckpt_->find(e.name);
      if (!t) {
        problems.push_back("missing tensor '" + e.name + "' (expected shape " + shape_str(e.shape) +
                           ")");
        continue;
      }
      if (file_quant_.count(e.name)) {
        check_stored_quantised(e.name, e.shape, problems);
        continue;
      }
      if (t->shape != e.shape)
        problems.push_back("tensor '" + e.name + "' has shape " + t->shape_string() +
                           ", expected " + shape_str(e.shape));
      if (t->type != dtype::f32 && t->type != dtype::bf16 && t->type != dtype::f16)
        problems.push_back("tensor '" + e.name + "' has dtype " +
                           io::safetensors_dtype_name(t->type) + ", expected F32, BF16 or F16");
    }
    for (const auto& name : ckpt_->names()) {
      if (wanted.count(name)) continue;
      if (config_.tie_word_embeddings && name == "lm_head.weight") {
        // A duplicate of the tied embedding matrix: accepted (and ignored) when it is well formed.
        const io::tensor_info& t = ckpt_->at(name);
        const std::vector<std::int64_t> s = {config_.vocab_size, config_.d_model};
        if (file_quant_.count(name)) { // a quantised head: used as the head (see the top)
          check_stored_quantised(name, s, problems);
          continue;
        }
        if (t.shape != s)
          problems.push_back("tensor 'lm_head.weight' (tied embeddings) has shape " +
                             t.shape_string() + ", expected " + shape_str(s));
        if (t.type != dtype::f32 && t.type != dtype::bf16 && t.type != dtype::f16)
          problems.push_back("tensor 'lm_head.weight' has dtype " +
                             std::string(io::safetensors_dtype_name(t.type)) +
                             ", expected F32, BF16 or F16");
        continue;
      }
      problems.push_back("unexpected tensor '" + name + "' (shape " +
                         ckpt_->at(name).shape_string() + ") for a " +
                         to_string(config_.block_type) + " model with " +
                         std::to_string(config_.n_layer) + " layers");
    }
    if (!problems.empty()) {
      std::string msg = ckpt_->dir() + ": checkpoint does not match config.json (" +
                        std::to_string(problems.size()) + " problem" +
                        (problems.size() > 1 ? "s" : "") + "):";
      for (std::size_t i = 0; i < problems.size() && i < max_listed_problems; ++i)
        msg += "\n  " + problems[i];
      if (problems.size() > max_listed_problems)
        msg += "\n  ... and " + std::to_string(problems.size() - max_listed_problems) + " more";
      throw error(msg);
    }
  }

  /// The quantised tensors of every file of the checkpoint (their layout validated).
  void read_file_quant() {
    for (const io::safetensors_file& f : ckpt_->files())
      for (auto& [name, e] : read_quant_entries(f))
        file_quant_.emplace(name, e);
  }

  /// A tensor the checkpoint stores quantised: one the model reads as a linear layer's weight, of
  /// logical shape `want`.
  void check_stored_quantised(const std::string& name, const std::vector<std::int64_t>& want,
                              std::vector<std::string>& problems) const {
    const quant_tensor_entry& q = file_quant_.at(name);
    if (!quant_policy::quantisable(name)) {
      problems.push_back("tensor '" + name + "' is stored quantised (" + to_string(q.format) +
                         ") but the model reads it unquantised (only the projections, the "
                         "low-rank projections and the head may be quantised)");
      return;
    }
    const std::vector<std::int64_t> logical = {q.rows, q.cols};
    if (logical != want)
      problems.push_back("tensor '" + name + "' (quantised " + to_string(q.format) +
                         ") has logical shape " + shape_str(logical) + ", expected " +
                         shape_str(want));
  }

  /// With a policy, every matrix the checkpoint stores quantised must have the policy's format.
  void check_quant_agreement() const {
    if (!quant_.any()) return;
    for (const auto& [name, q] : file_quant_) {
      const weight_format want = quant_.format_for(name);
      if (want != q.format)
        throw error(ckpt_->dir() + ": tensor '" + name + "' is stored quantised as " +
                    to_string(q.format) + " but the quantisation asked for (--weights) gives it " +
                    to_string(want) +
                    ": quantised blocks are used as stored, never re-quantised (load this "
                    "checkpoint without --weights, or quantise the original weights)");
    }
  }

  static constexpr std::size_t kMatrixAlignment = 64; // of each matrix in memory_ (a cache line)
  static std::size_t aligned_bytes(const io::tensor_info& t) noexcept {
    return (t.end - t.begin + kMatrixAlignment - 1) / kMatrixAlignment * kMatrixAlignment;
  }

  /// One block for every matrix of the checkpoint (an upper bound: vectors and an ignored tied
  /// lm_head are counted too; pages never written are never committed). Weights larger than the
  /// machine's memory stay in the file mapping (placement() says mapped): a copy would end in the
  /// OOM killer, the mapping pages them in from the file on demand.
  void reserve_memory() {
    std::size_t total = 0;
    for (const auto& name : ckpt_->names())
      total += aligned_bytes(ckpt_->at(name));
    const double physical = physical_memory_bytes();
    if (physical > 0 && double(total) > physical) {
      placement_ = weight_placement::mapped;
      return;
    }
    memory_ = std::make_shared<huge_page_buffer>(total, ckpt_->dir() + ": weights");
  }

  /// The quantised size of `t` under format f, rounded up to kMatrixAlignment.
  static std::size_t quantised_bytes(const io::tensor_info& t, weight_format f) noexcept {
    const std::size_t b =
        std::size_t(t.shape[0]) * std::size_t(quant_blocks(t.shape[1])) * quant_block_bytes(f);
    return (b + kMatrixAlignment - 1) / kMatrixAlignment * kMatrixAlignment;
  }

  /// The format the policy quantises the matrix `name` into at load (stored for vectors,
  /// embeddings and matrices the checkpoint already stores quantised).
  weight_format format_of(const std::string& name) const {
    if (file_quant_.count(name)) return weight_format::stored;
    const io::tensor_info& t = ckpt_->at(name);
    return t.shape.size() == 2 ? quant_.format_for(name) : weight_format::stored;
  }

  /// The bytes of the matrices the checkpoint stores quantised (all used: validate() refuses the
  /// others).
  std::size_t saved_quantised_bytes() const {
    std::size_t total = 0;
    for (const auto& [name, e] : file_quant_)
      total += aligned_bytes(ckpt_->at(name));
    return total;
  }

  /// One block of memory for every matrix the policy quantises (the tied head counted under the
  /// name lm_head.weight, read from the embeddings) and every matrix the checkpoint stores
  /// quantised unless those stay in the mapping (saved_quant_layout_).
  void reserve_quantised() {
    std::size_t total = saved_quant_layout_ == quant_layout::blocks ? 0 : saved_quantised_bytes();
    if (quant_.any()) {
      for (const auto& e : expected_tensors(config_))
        if (e.shape.size() == 2) total += quantised_bytes(ckpt_->at(e.name), format_of(e.name));
      if (config_.tie_word_embeddings)
        total += quantised_bytes(ckpt_->at("model.embeddings.weight"), tied_head_format());
    }
    if (total > 0)
      quant_memory_ =
          std::make_shared<huge_page_buffer>(total, ckpt_->dir() + ": quantised weights");
  }

  /// The format the policy quantises a tied model's head into at load (stored when the checkpoint
  /// holds a quantised head).
  weight_format tied_head_format() const {
    if (file_quant_.count("lm_head.weight")) return weight_format::stored;
    return quant_.format_for("lm_head.weight");
  }

  /// The checkpoint tensor `source` quantised to `f` into quant_memory_. The rows are independent
  /// and q4_0's scale search is the slow part of a quantising load (one thread took about 25 s
  /// for rodimus-plus-1.6b on the 2-core build machine), so contiguous chunks of rows run on
  /// quant_threads_ threads (0: the machine's hardware threads); the blocks written do not depend
  /// on the split.
  weight_matrix quantised_matrix(const std::string& name, const std::string& source,
                                 weight_format f) {
    const io::tensor_info& t = ckpt_->at(source);
    weight_matrix m;
    m.type = t.type;
    m.rows = t.shape[0];
    m.cols = t.shape[1];
    m.format = f;
    if (name == source) dtype_counts_[t.type] += t.numel(); // a tied head's copy is not counted
    unsigned char* dst = quantised_memory(name, quantised_bytes(t, f));
    const std::size_t row = m.row_bytes();
    const auto quantise = [&](index_t r) {
      unsigned char* out = dst + std::size_t(r) * row;
      const unsigned char* in = t.bytes + std::size_t(r * m.cols) * size_of(t.type);
      status s = status::success();
      const auto run = [&](auto block) {
        using Block = decltype(block);
        Block* o = reinterpret_cast<Block*>(out);
        switch (t.type) {
        case dtype::f32: s = quantise_row(reinterpret_cast<const float*>(in), m.cols, o); break;
        case dtype::bf16: s = quantise_row(reinterpret_cast<const bf16*>(in), m.cols, o); break;
        default: s = quantise_row(reinterpret_cast<const f16*>(in), m.cols, o); break;
        }
      };
      if (f == weight_format::q8_0)
        run(q8_0_block{});
      else
        run(q4_0_block{});
      return s;
    };
    // Chunk c covers rows [c rows / chunks, (c + 1) rows / chunks) and stops at its first bad row;
    // the error reported is the one of the lowest row among the chunks that failed.
    constexpr index_t rows_per_chunk_min = 256;
    const index_t threads = index_t(
        quant_threads_ > 0 ? quant_threads_ : std::max(1u, std::thread::hardware_concurrency()));
    const index_t chunks = std::max<index_t>(1, std::min(threads, m.rows / rows_per_chunk_min));
    std::vector<index_t> bad_row(std::size_t(chunks), -1);
    std::vector<status> bad_status(std::size_t(chunks), status::success());
    const auto run_chunk = [&](index_t c) {
      for (index_t r = c * m.rows / chunks; r < (c + 1) * m.rows / chunks; ++r) {
        const status s = quantise(r);
        if (!s.ok()) {
          bad_row[std::size_t(c)] = r;
          bad_status[std::size_t(c)] = s;
          return;
        }
      }
    };
    {
      std::vector<std::thread> workers;
      workers.reserve(std::size_t(chunks - 1));
      index_t spawned = 1; // chunks [1, spawned) have a worker; the rest run on this thread
      try {
        for (; spawned < chunks; ++spawned)
          workers.emplace_back(run_chunk, spawned);
      } catch (const std::system_error&) {
        // No thread could be started (a process limit): fewer workers, the same rows. Leaving
        // here with running threads in `workers` would call std::terminate.
      }
      run_chunk(0);
      for (index_t c = spawned; c < chunks; ++c)
        run_chunk(c);
      for (auto& w : workers)
        w.join();
    }
    for (index_t c = 0; c < chunks; ++c) {
      if (bad_row[std::size_t(c)] < 0) continue;
      const status& s = bad_status[std::size_t(c)];
      throw error(ckpt_->dir() + ": tensor '" + source + "' row " +
                  std::to_string(bad_row[std::size_t(c)]) + " cannot be quantised to " +
                  to_string(f) + ": " + to_string(s.code) + " (" + s.what + ")");
    }
    to_decode_layout(m, dst);
    quantised_[name] = m;
    return m;
  }

  /// `bytes` of quant_memory_ for the quantised matrix `name`.
  unsigned char* quantised_memory(const std::string& name, std::size_t bytes) {
    if (!quant_memory_ || quant_used_ + bytes > quant_memory_->size())
      throw error(ckpt_->dir() + ": weights: internal error: quantised '" + name +
                  "' does not fit the reserved block");
    unsigned char* dst = quant_memory_->data() + quant_used_;
    quant_used_ += bytes;
    return dst;
  }

  /// The blocks of quantised matrix m, at `data` (quant_memory_), rearranged row by row into the
  /// decode layout; m then points at them.
  static void to_decode_layout(weight_matrix& m, unsigned char* data) {
    m.layout = quant_layout::groups16;
    repack_quant_rows(data, data, m.format, m.rows, quant_blocks(m.cols), quant_layout::blocks,
                      m.layout);
    m.data = data;
  }

  /// The bytes of tensor `name` where the placement puts them: copied into memory_, or in place
  /// in the mapping when aligned to `align`, else an aligned copy.
  const void* place(const std::string& name, std::size_t align) {
    const io::tensor_info& t = ckpt_->at(name);
    if (memory_) {
      if (memory_used_ + aligned_bytes(t) > memory_->size())
        throw error(ckpt_->dir() + ": weights: internal error: '" + name +
                    "' does not fit the reserved block");
      unsigned char* dst = memory_->data() + memory_used_;
      std::memcpy(dst, t.bytes, t.end - t.begin);
      memory_used_ += aligned_bytes(t);
      return dst;
    }
    if (reinterpret_cast<std::uintptr_t>(t.bytes) % align == 0) return t.bytes;
    // the file leaves it misaligned: keep an aligned copy
    owned_.emplace_back(std::make_shared<std::vector<float>>((t.end - t.begin + 3) / 4));
    std::memcpy(owned_.back()->data(), t.bytes, t.end - t.begin);
    return owned_.back()->data();
  }

  weight_matrix matrix(const std::string& name) {
    if (const weight_format f = format_of(name); f != weight_format::stored)
      return quantised_matrix(name, name, f);
    weight_matrix m;
    if (const auto q = file_quant_.find(name); q != file_quant_.end()) { // stored quantised
      m.type = q->second.source;
      m.rows = q->second.rows;
      m.cols = q->second.cols;
      m.format = q->second.format;
      if (name != "lm_head.weight" || !config_.tie_word_embeddings) // as a tied head's copy
        dtype_counts_[m.type] += m.rows * m.cols;
      if (saved_quant_layout_ == quant_layout::blocks) { // as saved, in the mapping
        m.data = place(name, alignof(q8_0_block));
      } else {
        const io::tensor_info& t = ckpt_->at(name);
        unsigned char* dst = quantised_memory(name, aligned_bytes(t));
        std::memcpy(dst, t.bytes, m.bytes());
        to_decode_layout(m, dst);
      }
      quantised_[name] = m;
      return m;
    }
    const io::tensor_info& t = ckpt_->at(name);
    m.type = t.type;
    m.rows = t.shape[0];
    m.cols = t.shape.size() > 1 ? t.shape[1] : 1;
    dtype_counts_[t.type] += t.numel();
    m.data = place(name, size_of(t.type));
    return m;
  }
  /// The vector `name` converted to f32, kept in vectors_ (its heap block never moves: moving a
  /// std::vector keeps its buffer, so the view stays valid when model_weights moves).
  weight_vector vec(const std::string& name) {
    const io::tensor_info& t = ckpt_->at(name);
    dtype_counts_[t.type] += t.numel();
    vectors_.push_back(ckpt_->read<float>(name));
    return make_view(static_cast<const float*>(vectors_.back().data()),
                     index_t(vectors_.back().size()));
  }

  void bind() {
    const model_config& c = config_;
    vectors_.reserve(std::size_t(c.n_layer) * 10 + 2);
    views_.embeddings = matrix("model.embeddings.weight");
    if (c.use_norm_embedding) views_.embed_norm = vec("model.embed_norm.weight");
    views_.norm_f = vec("model.norm_f.weight");
    if (!c.tie_word_embeddings || file_quant_.count("lm_head.weight"))
      views_.lm_head = matrix("lm_head.weight");
    else if (const weight_format f = tied_head_format(); f != weight_format::stored)
      views_.lm_head = quantised_matrix("lm_head.weight", "model.embeddings.weight", f);
    else
      views_.lm_head = views_.embeddings;
    views_.layers.resize(std::size_t(c.n_layer));
    for (std::int64_t i = 0; i < c.n_layer; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      const std::string m = p + "mixer.";
      const std::string im = m + "inner_mixer.";
      layer_weights& L = views_.layers[std::size_t(i)];
      L.mixer_norm = vec(p + "mixer_norm.weight");
      L.mixer.fc = matrix(m + "fc.weight");
      L.mixer.out_proj = matrix(m + "out_proj.weight");
      // in_proj, mem_gate, ch_gate_down placed back to back (memory placement, and the
      // quantised copies): one-row calls read them as one matrix (blocks/common.hpp:
      // stacked_rows; blocks/mixer.hpp).
      L.mixer.in_proj = matrix(im + "in_proj.weight");
      L.mixer.mem_gate = matrix(im + "mem_gate_proj.weight");
      L.mixer.ch_gate_down = matrix(im + "ch_gate_proj.0.weight");
      L.mixer.ch_gate_up = matrix(im + "ch_gate_proj.1.weight");
      L.mixer.act_norm = vec(m + "act_norm.weight");
      L.mixer.conv_weight = vec(im + "short_conv.conv1d.weight"); // [E,1,W] == (E, W)
      L.mixer.conv_bias = vec(im + "short_conv.conv1d.bias");
      L.mixer.residual_weight = vec(im + "residual_weight");
      L.mixer.ch_gate_bias = vec(im + "ch_gate_proj.1.bias");
      L.mixer.mem_gate_bias = vec(im + "mem_gate_proj.bias");
      if (c.is_plus()) {
        L.attn_norm = vec(p + "attn_norm.weight");
        L.attn.q_proj = matrix(p + "attn.q_proj.weight");
        L.attn.k_proj = matrix(p + "attn.k_proj.weight");
        L.attn.v_proj = matrix(p + "attn.v_proj.weight");
        L.attn.out_proj = matrix(p + "attn.out_proj.weight");
        L.ffn_norm = vec(p + "ffn_norm.weight");
        L.ffn.fc = matrix(p + "ffn.fc.weight");
        L.ffn.out_proj = matrix(p + "ffn.out_proj.weight");
      }
    }
  }

  model_config config_;
  std::shared_ptr<const io::checkpoint> ckpt_;
  weight_placement placement_ = weight_placement::memory;
  quant_layout saved_quant_layout_ = quant_layout::groups16; // of the checkpoint's quantised ones
  std::shared_ptr<huge_page_buffer> memory_;                 // the matrices (placement memory)
  std::size_t memory_used_ = 0;
  quant_policy quant_;
  unsigned quant_threads_ = 0;                     // load()'s quant_threads (0: hardware threads)
  std::shared_ptr<huge_page_buffer> quant_memory_; // the quantised matrices
  std::size_t quant_used_ = 0;
  std::vector<std::shared_ptr<std::vector<float>>> owned_; // misaligned matrices (mapped)
  std::vector<std::vector<float>> vectors_; // the small vectors in f32 (views_ points into them)
  model_weight_views views_;
  std::map<dtype, std::int64_t> dtype_counts_;
  std::map<std::string, quant_tensor_entry> file_quant_; // the checkpoint's quantised tensors
  std::map<std::string, weight_matrix> quantised_;       // every quantised matrix, by name
};

} // namespace rodimus
