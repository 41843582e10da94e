// The model runner (SPEC §1): embedding, the blocks, the final norm and the LM head, over a
// state_pool, on one backend.
//
//   h0 = E[ids] * embed_scale  [-> RMSNorm(embed_norm)]          (M, D) f32; layer 0's residual
//   for each layer: (hidden, residual) = block(hidden, residual)
//   logits = RMSNorm_f(hidden + residual) . W_lm^T               (M, V) f32
//
//   prefill(pool, slots, ids, cu_seqlens)  packed sequences (different lengths allowed); sequence n
//       continues from the state in pool slot slots[n] (empty for a fresh slot) and leaves its
//       state there. Logits for every position, or only for each sequence's last token.
//   decode(pool, slots, ids)               one token per sequence, each with its own state.
// Decode and chunked prefill equal one full forward at every position (the window ring keeps
// window_size // 2 + 1 positions; the GLA state is f32).
//
// Errors (rodimus::error) name the problem: token ids out of range (the id and the vocabulary
// size), bad slots, malformed cu_seqlens, sequences longer than an unbounded attention window
// allows. All are checked before any state changes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "rodimus/blocks/block.hpp"
#include "rodimus/core/error.hpp"
#include "rodimus/model/config.hpp"
#include "rodimus/model/state.hpp"
#include "rodimus/model/weights.hpp"
#include "rodimus/primitives/linear.hpp"
#include "rodimus/primitives/rmsnorm.hpp"

namespace rodimus {

/// Which positions get logits.
enum class logits_for : unsigned char { all_positions, last_position };

/// Layer-0 sub-module outputs (for tests against the reference's per-module fixtures), (M, D) each.
struct layer0_outputs {
  std::vector<float> mixer_out, attn_out, ffn_out;
};

template <class Backend> class model_runner {
public:
  /// `weights` must outlive the runner.
  explicit model_runner(const model_weights& weights, Backend backend = Backend{})
      : w_(&weights), be_(backend) {}

  const model_config& config() const noexcept { return w_->config(); }
  const model_weights& weights() const noexcept { return *w_; }
  const Backend& backend() const noexcept { return be_; }

  /// A pool for `capacity` concurrent sequences of this model.
  state_pool make_pool(int capacity) const { return state_pool(config(), capacity); }

  /// Prefill packed sequences: sequence n is ids[cu_seqlens[n] .. cu_seqlens[n+1]) and continues in
  /// pool slot slots[n]. Returns logits (M, V) (all_positions) or (N, V) (last_position; a sequence
  /// of length 0 gets a row of zeros).
  std::vector<float> prefill(state_pool& pool, const std::vector<std::int32_t>& slots,
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
    std::vector<std::int64_t> position(static_cast<std::size_t>(N));
    bool fresh = true;
    for (index_t n = 0; n < N; ++n) {
      position[std::size_t(n)] = pool.position(slots[std::size_t(n)]);
      fresh = fresh && position[std::size_t(n)] == 0;
      check_capacity(pool, position[std::size_t(n)],
                     cu_seqlens[std::size_t(n + 1)] - cu_seqlens[std::size_t(n)],
                     slots[std::size_t(n)]);
    }
    batch_layout lay;
    lay.decode = false;
    lay.tokens = index_t(ids.size());
    lay.num_seqs = N;
    lay.cu_seqlens = cu_seqlens.data();
    lay.slot = slots.data();
    lay.position = position.data();
    lay.fresh = fresh;
    std::vector<index_t> rows;
    if (which == logits_for::last_position)
      for (index_t n = 0; n < N; ++n)
        rows.push_back(cu_seqlens[std::size_t(n + 1)] > cu_seqlens[std::size_t(n)]
                           ? cu_seqlens[std::size_t(n + 1)] - 1
                           : -1);
    std::vector<float> logits =
        run(pool, lay, ids.data(), which == logits_for::last_position ? &rows : nullptr, layer0);
    for (index_t n = 0; n < N; ++n)
      pool.positions()[slots[std::size_t(n)]] +=
          cu_seqlens[std::size_t(n + 1)] - cu_seqlens[std::size_t(n)];
    return logits;
  }

  /// Prefill B sequences of equal length T from fresh slots: ids (B, T) row-major.
  std::vector<float> prefill_batch(state_pool& pool, const std::vector<std::int32_t>& slots,
                                   const std::vector<std::int64_t>& ids, index_t T,
                                   logits_for which = logits_for::all_positions,
                                   layer0_outputs* layer0 = nullptr) {
    std::vector<std::int64_t> cu(slots.size() + 1);
    for (std::size_t n = 0; n <= slots.size(); ++n)
      cu[n] = std::int64_t(n) * T;
    return prefill(pool, slots, ids, cu, which, layer0);
  }

  /// One decode step: token ids[n] for the sequence in pool slot slots[n]. Returns logits (N, V).
  std::vector<float> decode(state_pool& pool, const std::vector<std::int32_t>& slots,
                            const std::vector<std::int64_t>& ids) {
    const index_t N = index_t(slots.size());
    if (index_t(ids.size()) != N)
      throw error("decode: " + std::to_string(ids.size()) + " token ids for " + std::to_string(N) +
                  " sequences");
    check_slots(pool, slots, "decode");
    check_ids(ids, "decode");
    std::vector<std::int64_t> position(static_cast<std::size_t>(N));
    for (index_t n = 0; n < N; ++n) {
      position[std::size_t(n)] = pool.position(slots[std::size_t(n)]);
      check_capacity(pool, position[std::size_t(n)], 1, slots[std::size_t(n)]);
    }
    batch_layout lay;
    lay.decode = true;
    lay.tokens = N;
    lay.num_seqs = N;
    lay.slot = slots.data();
    lay.position = position.data();
    std::vector<float> logits = run(pool, lay, ids.data(), nullptr, nullptr);
    for (index_t n = 0; n < N; ++n)
      pool.positions()[slots[std::size_t(n)]] += 1;
    return logits;
  }

private:
  void check_ids(const std::vector<std::int64_t>& ids, const char* what) const {
    const std::int64_t V = config().vocab_size;
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (ids[i] < 0 || ids[i] >= V)
        throw error(std::string(what) + ": token id " + std::to_string(ids[i]) + " (at index " +
                    std::to_string(i) + ") is out of range for the vocabulary size " +
                    std::to_string(V));
  }
  void check_slots(const state_pool& pool, const std::vector<std::int32_t>& slots,
                   const char* what) const {
    if (pool.config().d_model != config().d_model || pool.config().n_layer != config().n_layer ||
        pool.config().d_inner() != config().d_inner() ||
        pool.config().block_type != config().block_type)
      throw error(std::string(what) + ": the state pool was made for a different model");
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (slots[i] < 0 || slots[i] >= pool.capacity())
        throw error(std::string(what) + ": slot " + std::to_string(slots[i]) +
                    " is out of range [0, " + std::to_string(pool.capacity()) + ")");
      if (!pool.in_use(slots[i]))
        throw error(std::string(what) + ": slot " + std::to_string(slots[i]) +
                    " is not in use (acquire it from the pool first)");
      for (std::size_t j = 0; j < i; ++j)
        if (slots[j] == slots[i])
          throw error(std::string(what) + ": slot " + std::to_string(slots[i]) +
                      " appears twice in one batch");
    }
  }
  void check_capacity(const state_pool& pool, std::int64_t position, std::int64_t length,
                      std::int32_t slot) const {
    const model_config& c = config();
    if (c.is_plus() && c.window_left() < 0 && position + length > pool.ring_size())
      throw error(
          "sequence in slot " + std::to_string(slot) + " would reach " +
          std::to_string(position + length) +
          " tokens, more than the unbounded attention window holds (max_position_embeddings = " +
          std::to_string(pool.ring_size()) + ")");
  }

  template <class T>
  static void gather_rows(const weight_matrix& emb, const std::int64_t* ids, index_t M, float scale,
                          float* out) {
    const index_t D = emb.cols;
    const T* base = static_cast<const T*>(emb.data);
    for (index_t m = 0; m < M; ++m) {
      const T* row = base + std::size_t(ids[m]) * std::size_t(D);
      for (index_t d = 0; d < D; ++d)
        out[m * D + d] = load_as<float>(row[d]) * scale;
    }
  }

  std::vector<float> run(state_pool& pool, const batch_layout& lay, const std::int64_t* ids,
                         const std::vector<index_t>* rows, layer0_outputs* layer0) {
    const model_config& c = config();
    const index_t M = lay.tokens, D = c.d_model, V = c.vocab_size;
    const char* const ctx = lay.decode ? "decode" : "prefill";
    hidden_.assign(std::size_t(M * D), 0.0f);
    residual_.assign(std::size_t(M * D), 0.0f);
    // Embedding (x embed_scale) and the optional embedding norm.
    const float scale = c.embed_scale();
    switch (w_->embeddings().type) {
    case dtype::f32: gather_rows<float>(w_->embeddings(), ids, M, scale, hidden_.data()); break;
    case dtype::bf16: gather_rows<bf16>(w_->embeddings(), ids, M, scale, hidden_.data()); break;
    case dtype::f16: gather_rows<f16>(w_->embeddings(), ids, M, scale, hidden_.data()); break;
    default: throw error(std::string(ctx) + ": unsupported embedding dtype");
    }
    if (c.use_norm_embedding && M > 0) {
      tmp_.resize(std::size_t(M * D));
      rmsnorm_args<float, float> na;
      na.x = make_view(static_cast<const float*>(hidden_.data()), M, D);
      na.weight = make_view(w_->embed_norm().data(), D);
      na.y = make_view(tmp_.data(), M, D);
      na.eps = float(c.norm_epsilon);
      check(rmsnorm(be_, na), ctx, "embedding norm");
      hidden_.swap(tmp_);
    }
    // The blocks.
    const std::size_t ws_bytes = rodimus_block_workspace_bytes(be_, c, M, lay.num_seqs, lay.decode);
    if (ws_storage_.size() < ws_bytes) ws_storage_.resize(ws_bytes);
    block_capture cap;
    if (layer0) {
      layer0->mixer_out.assign(std::size_t(M * D), 0.0f);
      cap.mixer_out = layer0->mixer_out.data();
      if (c.is_plus()) {
        layer0->attn_out.assign(std::size_t(M * D), 0.0f);
        layer0->ffn_out.assign(std::size_t(M * D), 0.0f);
        cap.attn_out = layer0->attn_out.data();
        cap.ffn_out = layer0->ffn_out.data();
      }
    }
    const auto hv = make_view(hidden_.data(), M, D);
    const auto rv = make_view(residual_.data(), M, D);
    for (index_t l = 0; l < c.n_layer; ++l) {
      workspace ws;
      ws.base = ws_storage_.data();
      ws.bytes = ws_storage_.size();
      const status s = rodimus_block(be_, c, w_->layers()[std::size_t(l)], pool.layer(l), lay, hv,
                                     rv, l == 0, (layer0 && l == 0) ? &cap : nullptr, ws);
      if (!s.ok()) check(s, ctx, ("layer " + std::to_string(l)).c_str());
    }
    // Final add + norm, then the LM head on the wanted rows.
    const index_t R = rows ? index_t(rows->size()) : M;
    std::vector<float> logits(std::size_t(R * V), 0.0f);
    if (rows) {
      std::vector<float> h2(std::size_t(R * D), 0.0f), r2(std::size_t(R * D), 0.0f);
      index_t k = 0;
      std::vector<index_t> dst;
      for (index_t i = 0; i < R; ++i) {
        const index_t src = (*rows)[std::size_t(i)];
        if (src < 0) continue;
        std::memcpy(&h2[std::size_t(k * D)], &hidden_[std::size_t(src * D)],
                    std::size_t(D) * sizeof(float));
        std::memcpy(&r2[std::size_t(k * D)], &residual_[std::size_t(src * D)],
                    std::size_t(D) * sizeof(float));
        dst.push_back(i);
        ++k;
      }
      std::vector<float> out(std::size_t(k * V), 0.0f);
      head(h2.data(), r2.data(), k, out.data(), ctx);
      for (index_t j = 0; j < k; ++j)
        std::memcpy(&logits[std::size_t(dst[std::size_t(j)] * V)], &out[std::size_t(j * V)],
                    std::size_t(V) * sizeof(float));
    } else {
      head(hidden_.data(), residual_.data(), M, logits.data(), ctx);
    }
    return logits;
  }

  /// logits (M, V) = RMSNorm_f(hidden + residual) . W_lm^T
  void head(const float* hidden, const float* residual, index_t M, float* logits, const char* ctx) {
    if (M == 0) return;
    const model_config& c = config();
    const index_t D = c.d_model, V = c.vocab_size;
    tmp_.resize(std::size_t(M * D)); // (M, D) the normed final hidden state
    rmsnorm_args<float, float> na;
    na.x = make_view(hidden, M, D);
    na.residual = make_view(residual, M, D);
    na.weight = make_view(w_->norm_f().data(), D);
    na.y = make_view(tmp_.data(), M, D);
    na.eps = float(c.norm_epsilon);
    check(rmsnorm(be_, na), ctx, "final norm");
    check(linear_weight(be_, make_view(static_cast<const float*>(tmp_.data()), M, D), w_->lm_head(),
                        make_view(logits, M, V)),
          ctx, "lm_head");
  }

  /// Throw "<ctx>: <what>: <status>" when `s` failed (no string is built on success).
  static void check(status s, const char* ctx, const char* what) {
    if (!s.ok()) throw error(std::string(ctx) + ": " + what + ": " + to_string(s));
  }

  const model_weights* w_;
  Backend be_;
  std::vector<float> hidden_, residual_, tmp_;
  std::vector<unsigned char> ws_storage_;
};

/// Logits (B, T, V) of the rows of ids (B, T): a prefill of the first `prefix` tokens of every row,
/// then one decode step per remaining token (prefix = T: one forward; prefix = 0: decode only).
/// `layer0` (prefix = T only) receives layer 0's sub-module outputs.
template <class Backend>
std::vector<float> sequence_logits(model_runner<Backend>& runner,
                                   const std::vector<std::int64_t>& ids, index_t B, index_t T,
                                   index_t prefix, layer0_outputs* layer0 = nullptr) {
  if (B < 0 || T < 0 || index_t(ids.size()) != B * T)
    throw error("sequence_logits: " + std::to_string(ids.size()) + " token ids do not form a [" +
                std::to_string(B) + ", " + std::to_string(T) + "] batch");
  if (prefix < 0 || prefix > T)
    throw error("sequence_logits: prefix " + std::to_string(prefix) + " is outside [0, " +
                std::to_string(T) + "]");
  const index_t V = runner.config().vocab_size;
  // All ids are checked here, before any work, so an error names the row and column.
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= V)
      throw error("sequence_logits: token id " + std::to_string(ids[i]) + " at [" +
                  std::to_string(index_t(i) / T) + ", " + std::to_string(index_t(i) % T) +
                  "] is out of range for the vocabulary size " + std::to_string(V));
  std::vector<float> out(std::size_t(B * T * V), 0.0f);
  if (B == 0 || T == 0) return out;
  state_pool pool = runner.make_pool(int(B));
  std::vector<std::int32_t> slots(static_cast<std::size_t>(B));
  for (index_t b = 0; b < B; ++b)
    slots[std::size_t(b)] = pool.acquire();
  if (prefix > 0) {
    std::vector<std::int64_t> head(std::size_t(B * prefix));
    for (index_t b = 0; b < B; ++b)
      for (index_t t = 0; t < prefix; ++t)
        head[std::size_t(b * prefix + t)] = ids[std::size_t(b * T + t)];
    const std::vector<float> lg = runner.prefill_batch(
        pool, slots, head, prefix, logits_for::all_positions, prefix == T ? layer0 : nullptr);
    for (index_t b = 0; b < B; ++b)
      std::memcpy(&out[std::size_t((b * T) * V)], &lg[std::size_t((b * prefix) * V)],
                  std::size_t(prefix * V) * sizeof(float));
  }
  std::vector<std::int64_t> step(static_cast<std::size_t>(B));
  for (index_t t = prefix; t < T; ++t) {
    for (index_t b = 0; b < B; ++b)
      step[std::size_t(b)] = ids[std::size_t(b * T + t)];
    const std::vector<float> lg = runner.decode(pool, slots, step);
    for (index_t b = 0; b < B; ++b)
      std::memcpy(&out[std::size_t((b * T + t) * V)], &lg[std::size_t(b * V)],
                  std::size_t(V) * sizeof(float));
  }
  return out;
}

} // namespace rodimus
