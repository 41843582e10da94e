// The model runner (docs/MODEL.md §1): embedding, the blocks, the final norm and the LM head, over
// a state_pool, on one backend.
//
//   h0 = E[ids] * embed_scale  [-> RMSNorm(embed_norm)]          (M, D) f32; layer 0's residual
//   for each layer: (hidden, residual) = block(hidden, residual)
//   logits = RMSNorm_f(hidden + residual) . W_lm^T               (M, V) f32
//
//   prefill(pool, slots, ids, cu_seqlens)  packed sequences (different lengths allowed); sequence n
//       continues from the state in pool slot slots[n] (empty for a fresh slot) and leaves its
//       state there. Logits for every position, or only for each sequence's last token.
//   decode(pool, slots, ids)               one token per sequence, each with its own state.
//   decode_greedy(pool, slots, ids)        the same, returning each sequence's argmax token.
// Decode and chunked prefill equal one full forward at every position (the window ring keeps
// window_size // 2 + 1 positions; the GLA state is f32).
//
// Memory: the runner works the same on every backend (core/memory.hpp). Its activations, workspace
// and batch metadata (token ids, cu_seqlens, slots, positions: validated on the host, then copied
// once per call) live in the backend's memory; on a backend the host cannot read (CUDA) the weights
// are copied there once (model/backend_weights.hpp). Host <-> backend traffic per call: the ids and
// metadata in, the logits out. Decode steps go through step_graph<Backend> (a CUDA graph per batch
// size on the GPU).
//
// Padding (primitives/slots.hpp): a slot of -1 is a padding sequence or row, as in a batch padded
// to a captured size. Its state and position are not touched; its token ids must still be valid,
// and its logits rows hold no meaning.
//
// Errors (rodimus::error) name the problem: token ids out of range (the id and the vocabulary
// size), bad slots, malformed cu_seqlens, sequences longer than an unbounded attention window
// allows. All are checked before any state changes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "rodimus/backend/cpu/memory.hpp"
#include "rodimus/blocks/block.hpp"
#include "rodimus/core/error.hpp"
#include "rodimus/core/step_graph.hpp"
#include "rodimus/model/backend_weights.hpp"
#include "rodimus/model/config.hpp"
#include "rodimus/model/weights.hpp"
#include "rodimus/primitives/argmax_rows.hpp"
#include "rodimus/primitives/embedding.hpp"
#include "rodimus/primitives/gather_rows.hpp"
#include "rodimus/primitives/linear.hpp"
#include "rodimus/primitives/rmsnorm.hpp"
#include "rodimus/primitives/slots.hpp"
#include "rodimus/runtime/state.hpp"

namespace rodimus {

/// Which positions get logits.
enum class logits_for : unsigned char { all_positions, last_position };

/// Layer-0 sub-module outputs (for tests against the reference's per-module fixtures), (M, D) each.
struct layer0_outputs {
  std::vector<float> mixer_out, attn_out, ffn_out;
};

template <class Backend> class model_runner {
public:
  /// `weights` must outlive the runner. On a backend whose memory the host cannot read, the
  /// weights are copied there now.
  explicit model_runner(const model_weights& weights, Backend backend = Backend{})
      : w_(&weights), be_(backend), graph_(std::make_unique<step_graph<Backend>>(backend)),
        staging_(std::make_unique<upload_staging<Backend>>(backend)) {
    if constexpr (memory_traits<Backend>::host_accessible) {
      views_ = &weights.views();
    } else {
      on_backend_ = std::make_unique<backend_weights<Backend>>(backend, weights);
      views_ = &on_backend_->views();
    }
  }

  const model_config& config() const noexcept { return w_->config(); }
  const model_weights& weights() const noexcept { return *w_; }
  const Backend& backend() const noexcept { return be_; }
  /// Decode-step graphs captured so far (0 on the host backends).
  std::uint64_t graph_captures() const noexcept { return graph_->captures(); }

  /// A pool for `capacity` concurrent sequences of this model, in the backend's memory.
  state_pool<Backend> make_pool(int capacity) const {
    return state_pool<Backend>(config(), capacity, be_);
  }

  /// Prefill packed sequences: sequence n is ids[cu_seqlens[n] .. cu_seqlens[n+1]) and continues in
  /// pool slot slots[n]. Returns logits (M, V) (all_positions) or (N, V) (last_position; a sequence
  /// of length 0 gets a row of zeros).
  std::vector<float> prefill(state_pool<Backend>& pool, const std::vector<std::int32_t>& slots,
                             const std::vector<std::int64_t>& ids,
                             const std::vector<std::int64_t>& cu_seqlens,
                             logits_for which = logits_for::all_positions,
                             layer0_outputs* layer0 = nullptr) {
    const index_t N = index_t(slots.size());
    if (index_t(cu_seqlens.size()) != N + 1)
      throw error("prefill: cu_seqlens has " + std::to_string(cu_seqlens.size()) +
                  " entries, expected " + std::to_string(N + 1) +
                  " (one more than the number of sequences)");
    if (cu_seqlens[0] != 0)
      throw error("prefill: cu_seqlens[0] must be 0, got " + std::to_string(cu_seqlens[0]));
    for (index_t n = 0; n < N; ++n)
      if (cu_seqlens[std::size_t(n + 1)] < cu_seqlens[std::size_t(n)])
        throw error("prefill: cu_seqlens must be non-decreasing (entry " + std::to_string(n + 1) +
                    ")");
    if (cu_seqlens[std::size_t(N)] != index_t(ids.size()))
      throw error("prefill: cu_seqlens ends at " + std::to_string(cu_seqlens[std::size_t(N)]) +
                  " but there are " + std::to_string(ids.size()) + " token ids");
    check_slots(pool, slots, "prefill");
    check_ids(ids, "prefill");
    const std::vector<std::int64_t> position = positions_of(pool, slots, [&](index_t n) {
      return cu_seqlens[std::size_t(n + 1)] - cu_seqlens[std::size_t(n)];
    });
    bool fresh = true;
    for (const std::int64_t p : position)
      fresh = fresh && p == 0;
    std::vector<std::int64_t> rows;
    if (which == logits_for::last_position)
      for (index_t n = 0; n < N; ++n)
        rows.push_back(cu_seqlens[std::size_t(n + 1)] > cu_seqlens[std::size_t(n)]
                           ? cu_seqlens[std::size_t(n + 1)] - 1
                           : -1);
    batch_layout lay = upload_plan(ids, cu_seqlens, slots, position, rows);
    lay.decode = false;
    lay.fresh = fresh;
    std::vector<float> logits =
        run(pool, lay, which == logits_for::last_position ? index_t(rows.size()) : -1, layer0);
    for (index_t n = 0; n < N; ++n)
      if (!is_padding_slot(slots[std::size_t(n)]))
        pool.positions()[slots[std::size_t(n)]] +=
            cu_seqlens[std::size_t(n + 1)] - cu_seqlens[std::size_t(n)];
    return logits;
  }

  /// Prefill B sequences of equal length T from fresh slots: ids (B, T) row-major.
  std::vector<float> prefill_batch(state_pool<Backend>& pool,
                                   const std::vector<std::int32_t>& slots,
                                   const std::vector<std::int64_t>& ids, index_t T,
                                   logits_for which = logits_for::all_positions,
                                   layer0_outputs* layer0 = nullptr) {
    std::vector<std::int64_t> cu(slots.size() + 1);
    for (std::size_t n = 0; n <= slots.size(); ++n)
      cu[n] = std::int64_t(n) * T;
    return prefill(pool, slots, ids, cu, which, layer0);
  }

  /// One decode step: token ids[n] for the sequence in pool slot slots[n]. Returns logits (N, V).
  std::vector<float> decode(state_pool<Backend>& pool, const std::vector<std::int32_t>& slots,
                            const std::vector<std::int64_t>& ids) {
    const batch_layout lay = plan_decode(pool, slots, ids);
    std::vector<float> logits = run(pool, lay, -1, nullptr);
    advance(pool, slots);
    return logits;
  }

  /// decode() followed by the greedy choice on the backend: returns each sequence's next token
  /// (argmax_rows of its logits, first index among ties), so N ids come back instead of N x V
  /// logits (32 MB a step at N = 64 on the 1.6B model).
  std::vector<std::int64_t> decode_greedy(state_pool<Backend>& pool,
                                          const std::vector<std::int32_t>& slots,
                                          const std::vector<std::int64_t>& ids) {
    const batch_layout lay = plan_decode(pool, slots, ids);
    std::vector<std::int64_t> next;
    (void)run(pool, lay, -1, nullptr, &next);
    advance(pool, slots);
    return next;
  }

  /// The engine form of decode(): token ids (N) and logits (N, V) live in the backend's memory and
  /// the step is only queued on the backend's stream (a CUDA graph per batch size and buffers):
  /// no synchronisation, and no allocation once a batch size has run once. The slots stay host
  /// bookkeeping, checked as in decode(); the ids cannot be checked on the host: an id outside the
  /// vocabulary gives a row of NaN logits on CUDA (an error on the host backends).
  void decode_async(state_pool<Backend>& pool, const std::vector<std::int32_t>& slots,
                    const std::int64_t* ids, float* logits) {
    const index_t N = index_t(slots.size());
    check_slots(pool, slots, "decode");
    const std::vector<std::int64_t> position = positions_of(pool, slots, [](index_t) { return 1; });
    if (N == 0) return;
    batch_layout lay = upload_plan({}, {}, slots, position, {});
    lay.decode = true;
    lay.tokens = N;
    reserve_step(lay, -1, 0); // the logits go to the caller's memory
    const char* failed = nullptr;
    const std::uint64_t key = step_key(pool, N) ^
                              (std::uint64_t(reinterpret_cast<std::uintptr_t>(ids)) * 31) ^
                              (std::uint64_t(reinterpret_cast<std::uintptr_t>(logits)) * 131);
    const status s =
        graph_->run(key, [&] { return forward(pool, lay, -1, nullptr, ids, logits, failed); });
    check(s, "decode", failed ? failed : "step");
    advance(pool, slots);
  }

private:
  /// The checked and uploaded plan of one decode step (nothing changes when a check throws).
  batch_layout plan_decode(state_pool<Backend>& pool, const std::vector<std::int32_t>& slots,
                           const std::vector<std::int64_t>& ids) {
    const index_t N = index_t(slots.size());
    if (index_t(ids.size()) != N)
      throw error("decode: " + std::to_string(ids.size()) + " token ids for " + std::to_string(N) +
                  " sequences");
    check_slots(pool, slots, "decode");
    check_ids(ids, "decode");
    const std::vector<std::int64_t> position = positions_of(pool, slots, [](index_t) { return 1; });
    batch_layout lay = upload_plan(ids, {}, slots, position, {});
    lay.decode = true;
    return lay;
  }
  /// After a decode step: every sequence of the batch (padding rows aside) is one token further.
  static void advance(state_pool<Backend>& pool, const std::vector<std::int32_t>& slots) {
    for (std::int32_t slot : slots)
      if (!is_padding_slot(slot)) pool.positions()[slot] += 1;
  }
  /// The position of each sequence (0 for a padding slot), after checking that `length(n)` more
  /// tokens fit its unbounded attention window. Slots must have passed check_slots.
  template <class Length>
  std::vector<std::int64_t> positions_of(const state_pool<Backend>& pool,
                                         const std::vector<std::int32_t>& slots,
                                         Length length) const {
    std::vector<std::int64_t> position(slots.size(), 0);
    for (std::size_t n = 0; n < slots.size(); ++n) {
      if (is_padding_slot(slots[n])) continue;
      position[n] = pool.position(slots[n]);
      check_capacity(pool, position[n], length(index_t(n)), slots[n]);
    }
    return position;
  }

  void check_ids(const std::vector<std::int64_t>& ids, const char* what) const {
    const std::int64_t V = config().vocab_size;
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (ids[i] < 0 || ids[i] >= V)
        throw error(std::string(what) + ": token id " + std::to_string(ids[i]) + " (at index " +
                    std::to_string(i) + ") is out of range for the vocabulary size " +
                    std::to_string(V));
  }
  void check_slots(const state_pool<Backend>& pool, const std::vector<std::int32_t>& slots,
                   const char* what) const {
    if (pool.config().d_model != config().d_model || pool.config().n_layer != config().n_layer ||
        pool.config().d_inner() != config().d_inner() ||
        pool.config().block_type != config().block_type)
      throw error(std::string(what) + ": the state pool was made for a different model");
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (is_padding_slot(slots[i])) continue; // primitives/slots.hpp
      if (!slot_in_pool(slots[i], pool.capacity()))
        throw error(std::string(what) + ": slot " + std::to_string(slots[i]) +
                    " is out of range [0, " + std::to_string(pool.capacity()) +
                    ") and not -1 (padding)");
      if (!pool.in_use(slots[i]))
        throw error(std::string(what) + ": slot " + std::to_string(slots[i]) +
                    " is not in use (acquire it from the pool first)");
      for (std::size_t j = 0; j < i; ++j)
        if (slots[j] == slots[i])
          throw error(std::string(what) + ": slot " + std::to_string(slots[i]) +
                      " appears twice in one batch");
    }
  }
  void check_capacity(const state_pool<Backend>& pool, std::int64_t position, std::int64_t length,
                      std::int32_t slot) const {
    const model_config& c = config();
    if (c.is_plus() && c.window_left() < 0 && position + length > pool.ring_size())
      throw error(
          "sequence in slot " + std::to_string(slot) + " would reach " +
          std::to_string(position + length) +
          " tokens, more than the unbounded attention window holds (max_position_embeddings = " +
          std::to_string(pool.ring_size()) + ")");
  }

  /// Copy the validated batch metadata into the backend's memory (one transfer) and describe it.
  batch_layout upload_plan(const std::vector<std::int64_t>& ids,
                           const std::vector<std::int64_t>& cu_seqlens,
                           const std::vector<std::int32_t>& slots,
                           const std::vector<std::int64_t>& position,
                           const std::vector<std::int64_t>& rows) {
    // Layout of the plan block: ids | cu_seqlens | position | rows | slots, each 256-byte aligned.
    std::size_t offset[5], total = 0;
    const std::size_t bytes[5] = {ids.size() * 8, cu_seqlens.size() * 8, position.size() * 8,
                                  rows.size() * 8, slots.size() * 4};
    const void* src[5] = {ids.data(), cu_seqlens.data(), position.data(), rows.data(),
                          slots.data()};
    for (int i = 0; i < 5; ++i) {
      offset[i] = total;
      total += workspace::round_up(bytes[i] == 0 ? 1 : bytes[i]);
    }
    plan_host_.assign(total, 0);
    for (int i = 0; i < 5; ++i)
      if (bytes[i]) std::memcpy(plan_host_.data() + offset[i], src[i], bytes[i]);
    grow(plan_, total, "plan");
    check(staging_->upload(plan_.data(), plan_host_.data(), total), "upload", "batch plan");
    unsigned char* base = plan_.data();
    batch_layout lay;
    lay.tokens = index_t(ids.size());
    lay.num_seqs = index_t(slots.size());
    ids_ = reinterpret_cast<const std::int64_t*>(base + offset[0]);
    lay.cu_seqlens =
        cu_seqlens.empty() ? nullptr : reinterpret_cast<const std::int64_t*>(base + offset[1]);
    lay.position = reinterpret_cast<const std::int64_t*>(base + offset[2]);
    rows_ = reinterpret_cast<const std::int64_t*>(base + offset[3]);
    lay.slot = reinterpret_cast<const std::int32_t*>(base + offset[4]);
    return lay;
  }

  /// Make `buf` hold `bytes`; a new block forgets the captured graphs (they bake in addresses).
  void grow(backend_buffer<Backend>& buf, std::size_t bytes, const char* what) {
    if (buf.size() >= bytes) return;
    buf = backend_buffer<Backend>(be_, bytes, std::string("model_runner: ") + what);
    graph_->clear();
    ++generation_;
  }

  /// Run every layer and the head. `R` >= 0: logits only for the R plan rows (last_position).
  /// `greedy`: the argmax of every logits row goes there instead (the logits stay on the backend
  /// and an empty vector is returned).
  std::vector<float> run(state_pool<Backend>& pool, const batch_layout& lay, index_t R,
                         layer0_outputs* layer0, std::vector<std::int64_t>* greedy = nullptr) {
    const model_config& c = config();
    const index_t M = lay.tokens, D = c.d_model, V = c.vocab_size;
    const index_t rows_out = R >= 0 ? R : M;
    const char* const ctx = lay.decode ? "decode" : "prefill";
    std::vector<float> logits(greedy ? 0 : std::size_t(rows_out * V), 0.0f);
    if (M == 0) return logits;
    const std::size_t act = std::size_t(M * D) * sizeof(float);
    reserve_step(lay, R, std::size_t(rows_out * V) * sizeof(float));
    if (greedy) grow(greedy_, std::size_t(rows_out) * sizeof(std::int64_t), "greedy ids");
    block_capture cap;
    std::vector<backend_buffer<Backend>> captured;
    if (layer0) {
      for (int i = 0; i < (c.is_plus() ? 3 : 1); ++i)
        captured.emplace_back(be_, act, "model_runner: layer 0 outputs");
      cap.mixer_out = captured[0].template as<float>();
      if (c.is_plus()) {
        cap.attn_out = captured[1].template as<float>();
        cap.ffn_out = captured[2].template as<float>();
      }
    }
    const char* failed = nullptr;
    std::int64_t* const greedy_out = greedy ? greedy_.template as<std::int64_t>() : nullptr;
    auto step = [&]() -> status {
      return forward(pool, lay, R, layer0 ? &cap : nullptr, ids_, logits_.template as<float>(),
                     failed, greedy_out);
    };
    const std::uint64_t key = step_key(pool, M) ^ (greedy ? 0x5bd1e995u : 0u);
    const status s = lay.decode && !layer0 ? graph_->run(key, step) : step();
    if (!s.ok()) check(s, ctx, failed ? failed : "step");
    if (greedy) {
      greedy->assign(std::size_t(rows_out), 0);
      check(copy_to_host(be_, greedy->data(), greedy_out, greedy->size() * sizeof(std::int64_t)),
            ctx, "greedy ids");
      return logits;
    }
    check(copy_to_host(be_, logits.data(), logits_.data(), logits.size() * sizeof(float)), ctx,
          "logits");
    if (layer0) {
      auto back = [&](std::vector<float>& dst, const backend_buffer<Backend>& src) {
        dst.assign(std::size_t(M * D), 0.0f);
        check(copy_to_host(be_, dst.data(), src.data(), act), ctx, "layer 0 outputs");
      };
      back(layer0->mixer_out, captured[0]);
      if (c.is_plus()) {
        back(layer0->attn_out, captured[1]);
        back(layer0->ffn_out, captured[2]);
      }
    }
    return logits;
  }

  /// Every buffer a step of `lay` needs (R >= 0: logits for R plan rows), allocated before the
  /// step's launches (which must not allocate: a decode step is captured as a graph).
  void reserve_step(const batch_layout& lay, index_t R, std::size_t logits_bytes) {
    const model_config& c = config();
    const index_t M = lay.tokens, D = c.d_model;
    const index_t rows_out = R >= 0 ? R : M;
    const std::size_t act = std::size_t(M * D) * sizeof(float);
    grow(hidden_, act, "hidden");
    grow(residual_, act, "residual");
    grow(normed_, std::size_t(rows_out > M ? rows_out : M) * std::size_t(D) * sizeof(float),
         "normed");
    grow(logits_, logits_bytes, "logits");
    if (R >= 0) {
      grow(last_hidden_, std::size_t(R * D) * sizeof(float) + 1, "last rows");
      grow(last_residual_, std::size_t(R * D) * sizeof(float) + 1, "last rows");
    }
    grow(ws_,
         std::max(rodimus_block_workspace_bytes(be_, c, M, lay.num_seqs, lay.decode),
                  linear_weight_workspace_bytes(be_, rows_out, D, c.vocab_size) +
                      workspace::alignment),
         "workspace");
  }

  /// What a decode step's launches bake in: the batch size, the pool, the buffers' generation.
  std::uint64_t step_key(const state_pool<Backend>& pool, index_t M) const {
    auto& p = const_cast<state_pool<Backend>&>(pool);
    return (std::uint64_t(M) << 40) ^ (generation_ << 20) ^
           std::uint64_t(reinterpret_cast<std::uintptr_t>(p.layer(0).mixer.gla.data));
  }

  /// The launches of one call (no allocation, no synchronisation: a decode step is captured as
  /// is). `failed` names the stage of a failure.
  status forward(state_pool<Backend>& pool, const batch_layout& lay, index_t R,
                 const block_capture* cap, const std::int64_t* ids, float* logits,
                 const char*& failed, std::int64_t* greedy = nullptr) {
    const model_config& c = config();
    const model_weight_views& w = *views_;
    const index_t M = lay.tokens, D = c.d_model, V = c.vocab_size;
    float* hidden = hidden_.template as<float>();
    float* residual = residual_.template as<float>();
    float* normed = normed_.template as<float>();
    // Embedding (x embed_scale) and the optional embedding norm.
    failed = "embedding";
    RODIMUS_TRY(
        embedding_weight(be_, w.embeddings, ids, M, c.embed_scale(), make_view(hidden, M, D)));
    RODIMUS_TRY(fill_zero(be_, residual, std::size_t(M * D) * sizeof(float)));
    if (c.use_norm_embedding) {
      failed = "embedding norm";
      rmsnorm_args<float, float> na;
      na.x = make_view(static_cast<const float*>(hidden), M, D);
      na.weight = w.embed_norm;
      na.y = make_view(normed, M, D);
      na.eps = float(c.norm_epsilon);
      RODIMUS_TRY(rmsnorm(be_, na));
      RODIMUS_TRY(copy_within(be_, hidden, normed, std::size_t(M * D) * sizeof(float)));
    }
    // The blocks.
    failed = "layer";
    workspace ws{ws_.data(), ws_.size(), 0};
    const auto hv = make_view(hidden, M, D);
    const auto rv = make_view(residual, M, D);
    for (index_t l = 0; l < c.n_layer; ++l) {
      ws.used = 0;
      const status s = rodimus_block(be_, c, w.layers[std::size_t(l)], pool.layer(l), lay, hv, rv,
                                     l == 0, l == 0 ? cap : nullptr, ws);
      if (!s.ok()) {
        failed = layer_names(l);
        return s;
      }
    }
    // Final add + norm, then the LM head on the wanted rows.
    failed = "final norm";
    const float* h = hidden;
    const float* r = residual;
    index_t rows = M;
    if (R >= 0) {
      gather_rows_args ga;
      ga.in = make_view(static_cast<const float*>(hidden), M, D);
      ga.rows = rows_;
      ga.num_rows = R;
      ga.out = make_view(last_hidden_.template as<float>(), R, D);
      RODIMUS_TRY(gather_rows(be_, ga));
      ga.in = make_view(static_cast<const float*>(residual), M, D);
      ga.out = make_view(last_residual_.template as<float>(), R, D);
      RODIMUS_TRY(gather_rows(be_, ga));
      h = last_hidden_.template as<float>();
      r = last_residual_.template as<float>();
      rows = R;
    }
    if (rows == 0) return status::success();
    normed_input head_in; // the final norm, inside the head's GEMV where the backend fuses it
    if (linear_fuses_input(be_, rows) && !w.lm_head.quantised()) {
      head_in.pending = true;
      head_in.x = make_view(h, rows, D);
      head_in.residual = make_view(r, rows, D);
      head_in.weight = w.norm_f;
      head_in.eps = float(c.norm_epsilon);
    } else {
      rmsnorm_args<float, float> na;
      na.x = make_view(h, rows, D);
      na.residual = make_view(r, rows, D);
      na.weight = w.norm_f;
      na.y = make_view(normed, rows, D);
      na.eps = float(c.norm_epsilon);
      RODIMUS_TRY(rmsnorm(be_, na));
      head_in = normed_input(make_view(static_cast<const float*>(normed), rows, D));
    }
    failed = "lm_head";
    ws.used = 0;
    RODIMUS_TRY(linear_normed(be_, head_in, w.lm_head, make_view(logits, rows, V), ws));
    if (!greedy) return status::success();
    failed = "greedy choice";
    return argmax_rows(
        be_, argmax_rows_args{make_view(static_cast<const float*>(logits), rows, V), greedy});
  }

  /// "layer <l>" for error messages (a static string per layer index is not needed: one buffer).
  const char* layer_names(index_t l) {
    layer_name_ = "layer " + std::to_string(l);
    return layer_name_.c_str();
  }

  /// Throw "<ctx>: <what>: <status>" when `s` failed (no string is built on success).
  static void check(status s, const char* ctx, const char* what) {
    if (!s.ok()) throw error(std::string(ctx) + ": " + what + ": " + to_string(s));
  }

  const model_weights* w_;
  Backend be_;
  std::unique_ptr<backend_weights<Backend>> on_backend_; // weights copied to the backend
  const model_weight_views* views_ = nullptr;
  std::unique_ptr<step_graph<Backend>> graph_;
  std::unique_ptr<upload_staging<Backend>> staging_; // the batch plan's way to the backend
  std::uint64_t generation_ = 0; // bumped when a buffer moves (captured graphs then go)
  backend_buffer<Backend> hidden_, residual_, normed_, logits_, last_hidden_, last_residual_, ws_,
      plan_, greedy_;
  std::vector<unsigned char> plan_host_;
  const std::int64_t* ids_ = nullptr;  // in plan_
  const std::int64_t* rows_ = nullptr; // in plan_
  std::string layer_name_;
};

/// Rows sequence_logits runs at once: its state pool holds this many sequences whatever B is (an
/// input of 5000 one-token rows once took 5.6 GB of state).
constexpr index_t sequence_logits_group = 64;

/// Logits (B, T, V) of the rows of ids (B, T): a prefill of the first `prefix` tokens of every row,
/// then one decode step per remaining token (prefix = T: one forward; prefix = 0: decode only),
/// sequence_logits_group rows at a time. `layer0` (prefix = T, B <= sequence_logits_group)
/// receives layer 0's sub-module outputs.
template <class Backend>
std::vector<float> sequence_logits(model_runner<Backend>& runner,
                                   const std::vector<std::int64_t>& ids, index_t B, index_t T,
                                   index_t prefix, layer0_outputs* layer0 = nullptr) {
  if (B < 0 || T < 0 || (T > 0 && B > index_t(ids.size()) / T) || index_t(ids.size()) != B * T)
    throw error("sequence_logits: " + std::to_string(ids.size()) + " token ids do not form a [" +
                std::to_string(B) + ", " + std::to_string(T) + "] batch");
  if (prefix < 0 || prefix > T)
    throw error("sequence_logits: prefix " + std::to_string(prefix) + " is outside [0, " +
                std::to_string(T) + "]");
  if (layer0 && B > sequence_logits_group)
    throw error("sequence_logits: layer 0 outputs are kept for at most " +
                std::to_string(sequence_logits_group) + " rows, got " + std::to_string(B));
  const index_t V = runner.config().vocab_size;
  // All ids are checked here, before any work, so an error names the row and column.
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= V)
      throw error("sequence_logits: token id " + std::to_string(ids[i]) + " at [" +
                  std::to_string(index_t(i) / T) + ", " + std::to_string(index_t(i) % T) +
                  "] is out of range for the vocabulary size " + std::to_string(V));
  std::vector<float> out(std::size_t(B * T * V), 0.0f);
  if (B == 0 || T == 0) return out;
  const index_t G = B < sequence_logits_group ? B : sequence_logits_group;
  auto pool = runner.make_pool(int(G));
  for (index_t first = 0; first < B; first += G) {
    const index_t n = B - first < G ? B - first : G; // rows [first, first + n)
    std::vector<std::int32_t> slots(static_cast<std::size_t>(n));
    for (index_t b = 0; b < n; ++b)
      slots[std::size_t(b)] = pool.acquire();
    if (prefix > 0) {
      std::vector<std::int64_t> head(std::size_t(n * prefix));
      for (index_t b = 0; b < n; ++b)
        for (index_t t = 0; t < prefix; ++t)
          head[std::size_t(b * prefix + t)] = ids[std::size_t((first + b) * T + t)];
      const std::vector<float> lg = runner.prefill_batch(
          pool, slots, head, prefix, logits_for::all_positions, prefix == T ? layer0 : nullptr);
      for (index_t b = 0; b < n; ++b)
        std::memcpy(&out[std::size_t(((first + b) * T) * V)], &lg[std::size_t((b * prefix) * V)],
                    std::size_t(prefix * V) * sizeof(float));
    }
    std::vector<std::int64_t> step(static_cast<std::size_t>(n));
    for (index_t t = prefix; t < T; ++t) {
      for (index_t b = 0; b < n; ++b)
        step[std::size_t(b)] = ids[std::size_t((first + b) * T + t)];
      const std::vector<float> lg = runner.decode(pool, slots, step);
      for (index_t b = 0; b < n; ++b)
        std::memcpy(&out[std::size_t(((first + b) * T + t) * V)], &lg[std::size_t(b * V)],
                    std::size_t(V) * sizeof(float));
    }
    for (std::int32_t s : slots)
      pool.release(s);
  }
  return out;
}

} // namespace rodimus
