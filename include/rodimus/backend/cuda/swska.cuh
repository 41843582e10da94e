// Shared-key sliding-window attention on CUDA (math, shapes, the window and the ring layout in
// rodimus/primitives/swska.hpp): swska_prefill (batched or packed varlen, optionally continuing
// from a history ring per sequence), swska_decode (one token per row over a slot-indexed ring
// pool) and swska_ring_store. Act: f32, bf16, f16 (f64: unsupported "q"); scores, softmax and
// accumulation in f32; head dim D <= 256 (else unsupported "q"); any strides (unit inner strides
// give coalesced accesses).
//
// Checks. Every pointer, the index arrays included (cu_seqlens, slot, history_len,
// position, start_position), is DEVICE memory, so the entry points run only the shape checks
// (swska_check, swska_decode_check, swska_ring_store_check: the same status as on the CPU for
// every shape error) and then enqueue kernels on be.stream; they never allocate, synchronise or
// print. The contents of the index arrays are not validated (the model runner does it on the
// host); the kernels never read or write out of bounds and always terminate, for any contents:
//   - packed offsets are clamped into [0, T] (begin <= end); garbage gives garbage, not a fault;
//   - a sequence (prefill) or row (decode) whose history slot / slot is outside [0, P) (while it
//     needs its ring; slot -1 is the padding row of decode), whose history_len / position is
//     negative or absurd (> 2^62) is skipped: nothing is written for it (its output rows keep
//     what they held, no ring is touched), the slot rule of every backend for slot -1;
//   - the keys read from a ring are limited to the last W positions before the call (W - 1 in
//     decode, whose own slot p % W is being written), which changes nothing for valid arguments
//     (the primitive requires the ring to hold the window) and bounds every loop by W + T;
//   - swska_ring_store skips sequences whose slot is outside [0, P) or whose start position is
//     negative (the CPU backends refuse them with bad_argument).
// Rows (decode) or sequences (ring store) sharing a slot are a caller error (a data race here;
// the CPU backends refuse them in decode).
//
// Prefill kernel (swska_attend_kernel; the bf16 tensor-core prefill of cuda_matmul::rounded, D 64
// and 128, is backend/cuda/swska_prefill_mma.cuh). Work item = (batch row, tile of BQ query
// tokens, key head hk, chunk of query heads); a CTA of NW warps loops over items (grid-stride).
// Warp w serves query head hk + g * Hk of the item's head chunk (g = w % GW, GW = min(Hq / Hk, NW)
// heads per CTA) and RW consecutive query tokens (query group w / GW). So one key tile in shared
// memory serves every query head sharing that key head (the whole head group for Rodimus+,
// Hk = 1) and several query tokens; the values, one head per warp (Hv = Hq in Rodimus+), are read
// from global memory (L1/L2) by the warp and reused across its RW rows.
//   per item: q rows -> shared (f32, NW*RW x MaxD); for each sequence overlapping the token tile
//   (packed batches: found by binary search in cu_seqlens), walk the union of the rows' windows
//   [first(p(t0)), p(t1 - 1)] in tiles of 32 keys (from the history ring for positions before
//   the call, then from k):
//     1. the K tile -> shared, transposed and XOR-swizzled (conflict-free stores and loads);
//     2. lane j scores key j against the warp's RW rows (q broadcast from shared, float4);
//     3. online softmax per row (warp max / sum by shuffles, f32 expf, rescaling of the running
//        sum and accumulator), keys outside a row's window weigh 0;
//     4. acc[row][lane + 32c] += p_j * v_j: the keys with any weight (warp ballot) in groups of 4
//        (their value rows loaded together), p_j broadcast by shuffle.
//   The accumulator (RW x MaxD/32 per lane) stays in registers; o = acc / sum.
// (The kernel still has the decode mode it served before swska_decode_kernel: unit sequences,
// a split key range, the ring store; swska_decode no longer launches it.)
//
// Decode (swska_decode_kernel, flash decoding). A decode row reads its whole window once: the keys
// (one shared key head in Rodimus+) and the values of every head, (Hk + Hv) x D elements per
// position, are the bytes that bound it; the arithmetic is small. So one CTA serves every query
// head of a key head (up to 2048 / MaxD heads: 16 at D = 128; more make head chunks) over one
// piece of the row's keys, and each key row is loaded once for all of them:
//   - work item = (row, key head, head chunk, piece); 256 threads; thread t owns query head
//     t / (MaxD / 8) of the chunk and 8 consecutive columns: it stages that part of q and
//     accumulates that part of the output, so a warp streams consecutive 16-byte pieces of a
//     position's value heads (contiguous in the ring: one 4 KiB run per position at bf16, 16 x
//     128);
//   - per tile of 32 keys: the key rows -> shared (f32, transposed, swizzled); warp w scores its
//     heads against one key per lane and updates their online softmax (max, sum; weights and the
//     rescaling factor -> shared); then every thread rescales its accumulator and adds p_j v_j,
//     the value rows loaded 8 vectors at a time (swska_policy::decode_key_unroll) per thread;
//   - the window [lo, p] is cut into `splits` pieces (swska_decode_splits: a number fixed by the
//     shapes, so is the workspace) when rows x head chunks give fewer CTAs than
//     swska_policy::decode_target_ctas; each piece has >= decode_min_split_keys keys (or
//     cuda_tuning::swska_decode_min_keys), so a row with a short history uses fewer pieces
//     (swska_split_count) and the CTAs past them leave at once;
//   - a row that uses one piece writes o directly; otherwise each piece writes its partial (max,
//     sum, acc) per head and swska_combine_kernel (one CTA per (row, head)) merges them;
//   - before its overlapped wait each CTA asks L2 for the ring rows of its piece's first keys
//     (swska_decode_prefetch; small launches only: swska_policy::decode_prefetch_*), so that
//     they arrive while the projection before it still runs.
// The item of key head 0 / chunk 0 / piece 0 of each row also copies the new k, v into the ring
// slot p % W, which no reader of that row touches (its own key p is read from k / v, and only the
// W - 1 earlier positions come from the ring).
// RoPE inside the step (swska_decode_args::rotary_dim > 0, q and k unrotated; one rotary launch
// less per layer): each CTA computes the cos / sin of its row's position (host theta, f32 sincosf,
// rounded to Act: the rotary kernel's numbers) and rotates its staged q rows and own key in shared
// memory; the storing CTA writes the rotated new key into the ring. k must not alias ring_k.
// swska_ring_store: one warp per token (binary search of its sequence in the packed offsets),
// only each sequence's last W tokens copied, 16-byte vectors for dense rows.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/backend/cuda/launch.cuh"
#include "rodimus/core/dtype.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"
#include "rodimus/core/workspace.hpp"
#include "rodimus/primitives/rotary.hpp"
#include "rodimus/primitives/swska.hpp"

namespace rodimus {

/// Tuning constants of SW-SKA on cuda<Sm>. Prefill (first version, not yet tuned): per head-dim
/// bucket MaxD (64, 128, 256) the CTA has NW warps of RW query rows; the static shared memory is
/// NW*RW*MaxD (q) + 32*MaxD (key tile) floats <= 48 KiB, so no opt-in is needed: MaxD 64 and 128:
/// 8 warps x 8 rows; MaxD 256: 4 warps x 4 rows. ptxas (CUDA 13, sm_90 and sm_80): the prefill
/// tiles take about 170 to 255 registers (one CTA of 8 warps per SM), no spills except 12 bytes in
/// the bf16 prefill at MaxD 128. The ring store takes 48 registers (bf16, sm_90).
///
/// Decode (swska_decode_kernel, a flash-decoding kernel: see the top of this file): CTAs of
/// decode_threads threads serve every query head of a key head (up to 2048 / MaxD heads per CTA,
/// 16 at D = 128) over one piece of a row's window. The window is cut into pieces when fewer than
/// decode_target_ctas CTAs (4 per SM of an H100 / H200) would run: at most decode_max_splits
/// pieces of at least decode_min_split_keys keys each (a piece's fixed cost, q and the partial
/// result, is about 3 key rows at 16 heads; cuda_tuning::swska_decode_min_keys replaces it). Each
/// thread keeps decode_key_unroll 16-byte value loads in flight (8 keys of 16-bit Act, 4 of f32),
/// 32 KiB per CTA; ptxas (CUDA 13, sm_90): 109 to 127 registers (CUDA 13.0: MaxD 64 / 128 / 256 at
/// f32 122 / 111 / 109, bf16 127 / 122 / 125), no spills, so two CTAs per SM
/// (__launch_bounds__(256, 2); asking for three spills 40 to 100 bytes, 16 loads per thread spill
/// at MaxD 64). The 32-byte stack frame is sincosf's argument reduction for large angles (RoPE
/// inside the step), touched only there.
template <int Sm> struct swska_policy {
  static constexpr int key_tile = 32; // keys per tile: one per lane (fixed by the kernels)
  static constexpr int prefill_warps_small = 8, prefill_rows_small = 8; // MaxD 64, 128
  static constexpr int prefill_warps_large = 4, prefill_rows_large = 4; // MaxD 256
  static constexpr int decode_threads = 256;
  static constexpr int decode_key_unroll = 8; // 16-byte value loads in flight per thread
  static constexpr index_t decode_target_ctas = 528;
  static constexpr index_t decode_min_split_keys = 16;
  static constexpr index_t decode_max_splits = 128;
  // Ring rows asked into L2 before the kernel's overlapped wait (swska_decode_prefetch): up to
  // decode_prefetch_keys keys of each item's piece, while the launch's rows total at most
  // decode_prefetch_bytes (well inside the 50 MB L2 of an H100 / H200, which the projection
  // running beside it streams its weights through), and only while every item's CTA can be
  // resident at once (decode_ctas_per_sm per multiprocessor, __launch_bounds__): a CTA of a later
  // wave starts after the wait has long returned, so its prefetch would only add a round trip.
  // bench_swska_cuda on an H100 (2026-12-07): B = 1, 2049 keys 28.99 -> 19.38 us with the
  // prefetch and the wide combine; B = 64 / 16 at 129 keys 15% / 9% slower when every item
  // prefetched (576 and 528 CTAs): hence the residency condition.
  static constexpr index_t decode_prefetch_keys = 32;
  static constexpr std::size_t decode_prefetch_bytes = std::size_t(16) << 20;
  static constexpr index_t decode_ctas_per_sm = 2;
  static constexpr int ring_store_threads = 256;
  // The combine: one CTA per (row, head), a warp per group of pieces, combine_loads pieces'
  // 16-byte loads in flight per thread; combine_threads_wide from combine_wide_splits pieces
  // (a long window at a small batch: about 120 pieces at B = 1), else combine_threads.
  static constexpr int combine_threads = 128;
  static constexpr int combine_threads_wide = 256;
  static constexpr index_t combine_wide_splits = 64;
  static constexpr int combine_loads = 8;
};

namespace detail {

/// Largest history length / position the CUDA kernels accept (larger ones: the row is skipped),
/// so that position arithmetic never overflows.
constexpr index_t kSwskaCudaMaxPosition = index_t(1) << 62;

/// How the sequences of a call are laid out over the (B, T) token grid.
enum class swska_seq_mode : int {
  batched, // sequence n = batch row n, tokens [0, T)
  packed,  // B = 1, sequence n = tokens [cu[n], cu[n + 1])
  unit,    // decode: B = 1, sequence n = token n alone
};

/// Everything one attention launch needs (passed by value: under 1 KiB of kernel parameters).
template <class Act> struct swska_cuda_problem {
  tensor_view<const Act, 4> q, k, v; // (B, T, Hq | Hk | Hv, D)
  tensor_view<Act, 4> o;             // (B, T, Hq, D)
  tensor_view<const Act, 4> ring_k;  // (P, W, Hk, D) history keys; data nullptr: none
  tensor_view<const Act, 4> ring_v;  // (P, W, Hv, D)
  tensor_view<Act, 4> store_k;       // decode: the same rings, written at slot p % W
  tensor_view<Act, 4> store_v;
  const std::int64_t* cu_seqlens = nullptr; // packed
  index_t num_seqs = 0;                     // N
  const std::int32_t* slot = nullptr;       // (N) ring of each sequence; nullptr: n
  const std::int64_t* hist_len = nullptr;   // (N) positions before the call; nullptr: 0
  swska_seq_mode mode = swska_seq_mode::batched;
  bool decode = false;
  int window_left = -1;
  float scale = 1.0f;
  index_t G = 1;              // query heads per key head, Hq / Hk
  int GW = 1;                 // query heads per CTA
  int QW = 1;                 // query groups (of RW tokens) per CTA
  index_t HC = 1;             // head chunks: ceil(G / GW)
  index_t tiles = 1;          // token tiles per batch row: ceil(T / (QW * RW))
  int splits = 1;             // decode: pieces of the key range (> 1: partials to part_*)
  index_t split_min_keys = 1; // decode: keys per piece at least (swska_split_keys)
  float* part_acc = nullptr;  // (B * Hq * splits, D)
  float* part_ml = nullptr;   // (B * Hq * splits, 2): running max, sum
};

/// Tile shape of the attention kernel for head-dim bucket MaxD, NW warps of RW rows.
template <int MaxD, int NW, int RW> struct swska_tile {
  static constexpr int key_tile = 32;
  static constexpr int threads = NW * 32;
  static constexpr int rows = NW * RW;
  static constexpr int chunks = MaxD / 32; // accumulator values per lane and row
  /// Value rows loaded together in the PV step: 8 for one query row per warp (decode) up to
  /// MaxD 128 (8 x 4 more registers), else 4 (the prefill tiles' registers are spent on RW rows).
  static constexpr int value_group = RW == 1 && MaxD <= 128 ? 8 : 4;
  static_assert(MaxD % 32 == 0 && MaxD <= 256, "MaxD: 32..256 in steps of 32");
  static_assert(NW >= 1 && NW <= 32 && RW >= 1, "tile shape");
  static_assert(key_tile % value_group == 0, "value groups tile the key tile");
  static_assert((rows * MaxD + key_tile * MaxD) * sizeof(float) <= 48 * 1024,
                "static shared memory above 48 KiB");
};

__device__ __forceinline__ float swska_warp_max(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

__device__ __forceinline__ float swska_warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

__device__ __forceinline__ index_t swska_clamp(index_t x, index_t lo, index_t hi) {
  return x < lo ? lo : x > hi ? hi : x;
}

/// The first sequence that may overlap the tokens from t0 on (packed: the last n < N with
/// cu[n] <= t0, by binary search; for sorted offsets that is the sequence holding t0).
template <class Act>
__device__ index_t swska_first_sequence(const swska_cuda_problem<Act>& pr, index_t bq, index_t t0) {
  if (pr.mode == swska_seq_mode::batched) return bq;
  if (pr.mode == swska_seq_mode::unit) return t0;
  index_t lo = 0, hi = pr.num_seqs - 1;
  while (lo < hi) {
    const index_t mid = lo + (hi - lo + 1) / 2;
    if (index_t(pr.cu_seqlens[mid]) <= t0)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

/// Keys per piece when a range of `len` keys is split into at most `splits` pieces of at least
/// `min_keys` keys (the last piece takes the rest).
RODIMUS_HOST_DEVICE inline index_t swska_split_keys(index_t len, index_t splits,
                                                    index_t min_keys) noexcept {
  const index_t even = (len + splits - 1) / splits;
  return even > min_keys ? even : min_keys;
}

/// Pieces a range of `len` >= 1 keys actually uses (<= splits).
RODIMUS_HOST_DEVICE inline index_t swska_split_count(index_t len, index_t splits,
                                                     index_t min_keys) noexcept {
  const index_t per = swska_split_keys(len, splits, min_keys);
  return (len + per - 1) / per;
}

/// The keys a decode row attends: positions [lo, hi] (hi = its own position p; lo = the window's
/// first position, or the oldest of the W - 1 ring positions before p); `on` is false for a row
/// the kernels skip (slot outside [0, P), slot -1 being padding; position negative or absurd).
struct swska_decode_span {
  bool on = false;
  index_t lo = 0, hi = -1;
  __device__ index_t keys() const { return hi - lo + 1; }
};

/// The span of a row with slot s and position p (swska_decode_row_span reads them).
__device__ inline swska_decode_span swska_decode_span_of(index_t s, index_t p, index_t P, index_t W,
                                                         int window_left) {
  swska_decode_span sp;
  if (s < 0 || s >= P || p < 0 || p > kSwskaCudaMaxPosition) return sp;
  sp.on = true;
  sp.hi = p;
  sp.lo = p - (W - 1);
  if (window_left >= 0 && p - window_left > sp.lo) sp.lo = p - window_left;
  if (sp.lo < 0) sp.lo = 0;
  return sp;
}

__device__ inline swska_decode_span swska_decode_row_span(const std::int32_t* slot,
                                                          const std::int64_t* position, index_t row,
                                                          index_t P, index_t W, int window_left) {
  return swska_decode_span_of(slot ? index_t(slot[row]) : row, index_t(position[row]), P, W,
                              window_left);
}

template <int MaxD, int NW, int RW, class Act>
__global__ void __launch_bounds__(NW * 32) swska_attend_kernel(const swska_cuda_problem<Act> pr) {
  begin_after_prior_kernels();
  using tile = swska_tile<MaxD, NW, RW>;
  constexpr int BK = tile::key_tile, NC = tile::chunks, NT = tile::threads;
  constexpr int VG = tile::value_group;
  constexpr unsigned full = 0xffffffffu, vg_mask = (1u << VG) - 1u;
  const float ninf = -INFINITY;
  __shared__ __align__(16) float s_q[tile::rows][MaxD]; // the item's query rows
  __shared__ float s_k[MaxD][BK];                       // key tile, s_k[d][j ^ (d % 32)]

  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const index_t B = pr.q.shape[0], T = pr.q.shape[1], Hq = pr.q.shape[2], D = pr.q.shape[3];
  const index_t Hk = pr.k.shape[2], Hv = pr.v.shape[2];
  const index_t P = pr.ring_k.shape[0], W = pr.ring_k.data ? pr.ring_k.shape[1] : 1;
  const bool has_ring = pr.decode || pr.ring_k.data != nullptr;
  const index_t BQ = index_t(pr.QW) * RW;
  const index_t N = pr.mode == swska_seq_mode::batched ? B
                    : pr.mode == swska_seq_mode::unit  ? T
                                                       : pr.num_seqs;
  const index_t items = B * pr.tiles * Hk * pr.HC * pr.splits;
  const index_t wl = pr.window_left;
  const int D4 = int((D + 3) & ~index_t(3)); // q and the key tile are zero past D
  const bool warp_on = warp < pr.GW * pr.QW;
  const int wg = warp % pr.GW, wq = warp / pr.GW;

  for (index_t item = blockIdx.x; item < items; item += gridDim.x) {
    index_t rest = item;
    const int split = int(rest % pr.splits);
    rest /= pr.splits;
    const index_t chunk = rest % pr.HC;
    rest /= pr.HC;
    const index_t hk = rest % Hk;
    rest /= Hk;
    const index_t tile_i = rest % pr.tiles, bq = rest / pr.tiles;
    const index_t t0 = tile_i * BQ, t_end = t0 + BQ < T ? t0 + BQ : T;
    const index_t gi = chunk * pr.GW + wg;
    const bool head_on = warp_on && gi < pr.G; // warp-uniform
    const index_t h = hk + gi * Hk;            // this warp's query head (when head_on)
    const index_t hv = h % Hv;
    const index_t tq0 = t0 + index_t(wq) * RW; // this warp's first query token

    // A split decode: a piece past the row's keys (a short history needs fewer pieces than the
    // launch has) or a skipped row has nothing to do; the CTA leaves before staging q and writes
    // no partial (the combine kernel reads only the pieces a row uses). CTA-uniform.
    if (pr.splits > 1) {
      const swska_decode_span sp =
          swska_decode_row_span(pr.slot, pr.hist_len, t0, P, W, pr.window_left);
      if (!sp.on || split >= swska_split_count(sp.keys(), pr.splits, pr.split_min_keys)) continue;
    }

    __syncthreads(); // the previous item's readers of s_q are done
    for (int e = tid; e < tile::rows * MaxD; e += NT) {
      const int r = e / MaxD, d = e % MaxD, w = r / RW, i = r % RW;
      float x = 0.0f;
      if (w < pr.GW * pr.QW && d < D) {
        const index_t g = chunk * pr.GW + w % pr.GW;
        const index_t t = t0 + index_t(w / pr.GW) * RW + i;
        if (g < pr.G && t < t_end) x = load_as<float>(pr.q(bq, t, hk + g * Hk, d));
      }
      s_q[r][d] = x;
    }
    // (made visible by the __syncthreads after the first key tile's load; nothing reads s_q
    // before that)

    for (index_t n = swska_first_sequence(pr, bq, t0);
         n < (pr.mode == swska_seq_mode::batched ? bq + 1 : N); ++n) {
      index_t begin = 0, end = T;
      if (pr.mode == swska_seq_mode::unit) {
        begin = n;
        end = n + 1;
      } else if (pr.mode == swska_seq_mode::packed) {
        begin = swska_clamp(index_t(pr.cu_seqlens[n]), 0, T);
        end = swska_clamp(index_t(pr.cu_seqlens[n + 1]), begin, T);
      }
      if (begin >= t_end) break;
      const index_t s0 = begin > t0 ? begin : t0, s1 = end < t_end ? end : t_end;
      if (s0 >= s1) continue;

      // The sequence's history (uniform over the CTA: every thread reads the same values).
      const index_t hist_raw = has_ring && pr.hist_len ? index_t(pr.hist_len[n]) : 0;
      bool skip = hist_raw < 0 || hist_raw > kSwskaCudaMaxPosition;
      const index_t hs = pr.slot ? index_t(pr.slot[n]) : n;
      if ((pr.decode || hist_raw > 0) && (hs < 0 || hs >= P)) skip = true;
      if (is_padding_slot(hs)) skip = true; // a padding sequence, with or without history
      const index_t hist = skip ? 0 : hist_raw;
      // History keys come from the last `keep` positions before the call only.
      const index_t keep = pr.decode ? W - 1 : has_ring ? W : 0;
      auto first_key = [&](index_t p) {
        index_t f = wl < 0 ? 0 : p - wl;
        if (f < 0) f = 0;
        return f < hist - keep ? hist - keep : f;
      };

      // Padding row (slot -1) / bad slot or length: nothing is written (o, partials, rings), as
      // the slot rule asks; the combine kernel skips such rows by the same test.
      if (skip) continue;

      // Decode: the new key / value of this row into its ring slot (one CTA per row does it).
      if (pr.decode && hk == 0 && chunk == 0 && split == 0) {
        const index_t w = hist % pr.store_k.shape[1];
        for (index_t e = tid; e < Hk * D; e += NT)
          pr.store_k(hs, w, e / D, e % D) = pr.k(bq, s0, e / D, e % D);
        for (index_t e = tid; e < Hv * D; e += NT)
          pr.store_v(hs, w, e / D, e % D) = pr.v(bq, s0, e / D, e % D);
      }

      // The key range of this segment (and split).
      index_t lo = first_key(hist + (s0 - begin));
      index_t hi = hist + (s1 - 1 - begin);
      if (pr.splits > 1) { // (only splits < the row's used count get here: see the item's top)
        const index_t per = swska_split_keys(hi - lo + 1, pr.splits, pr.split_min_keys);
        lo += index_t(split) * per;
        if (lo + per - 1 < hi) hi = lo + per - 1;
      }

      // This warp's rows: rows ia <= i < ib hold tokens of this segment (query tq0 + i at
      // position pos0 + i); row i sees keys j with 0, hist - keep, pos0 + i - wl <= j <= pos0 + i.
      const int ia = head_on ? int(swska_clamp(s0 - tq0, 0, RW)) : 0;
      const int ib = head_on ? int(swska_clamp(s1 - tq0, 0, RW)) : 0;
      const index_t pos0 = hist + (tq0 - begin);
      float m[RW], l[RW], acc[RW][NC];
#pragma unroll
      for (int i = 0; i < RW; ++i) {
        m[i] = ninf;
        l[i] = 0.0f;
#pragma unroll
        for (int c = 0; c < NC; ++c)
          acc[i][c] = 0.0f;
      }

      for (index_t jb = lo; jb <= hi; jb += BK) {
        __syncthreads(); // the previous tile's readers of s_k are done
        for (int e = tid; e < BK * MaxD; e += NT) {
          const int j = e / MaxD, d = e % MaxD;
          const index_t ja = jb + j;
          float x = 0.0f;
          if (ja <= hi && d < D)
            x = load_as<float>(ja < hist ? pr.ring_k(hs, ja % W, hk, d)
                                         : pr.k(bq, begin + (ja - hist), hk, d));
          s_k[d][j ^ (d & 31)] = x;
        }
        __syncthreads();
        if (!head_on) continue; // warp-uniform; the next tile's barriers are still reached

        // 2. scores of key jb + lane against the warp's rows.
        float s[RW];
#pragma unroll
        for (int i = 0; i < RW; ++i)
          s[i] = 0.0f;
#pragma unroll 2
        for (int d = 0; d < D4; d += 4) {
          const float k0 = s_k[d][lane ^ (d & 31)], k1 = s_k[d + 1][lane ^ ((d + 1) & 31)];
          const float k2 = s_k[d + 2][lane ^ ((d + 2) & 31)];
          const float k3 = s_k[d + 3][lane ^ ((d + 3) & 31)];
#pragma unroll
          for (int i = 0; i < RW; ++i) {
            const float4 qv = *reinterpret_cast<const float4*>(&s_q[warp * RW + i][d]);
            s[i] = fmaf(qv.x, k0, s[i]);
            s[i] = fmaf(qv.y, k1, s[i]);
            s[i] = fmaf(qv.z, k2, s[i]);
            s[i] = fmaf(qv.w, k3, s[i]);
          }
        }

        // 3. online softmax per row.
        const index_t jl = jb + lane, rel = jl - pos0;
        const bool lane_ok = jl <= hi && jl >= hist - keep; // (jl >= lo >= 0)
        bool any = false;
        float pw[RW];
#pragma unroll
        for (int i = 0; i < RW; ++i) {
          const bool valid =
              i >= ia && i < ib && lane_ok && rel <= i && (wl < 0 || rel >= index_t(i) - wl);
          any = any || valid;
          const float sc = valid ? pr.scale * s[i] : ninf;
          const float tmax = swska_warp_max(sc);
          pw[i] = 0.0f;
          if (tmax == ninf) continue; // warp-uniform: no key of this tile for row i
          const float mnew = fmaxf(m[i], tmax);
          const float alpha = expf(m[i] - mnew); // 0 on the row's first keys (m = -inf)
          pw[i] = valid ? expf(sc - mnew) : 0.0f;
          l[i] = l[i] * alpha + swska_warp_sum(pw[i]);
#pragma unroll
          for (int c = 0; c < NC; ++c)
            acc[i][c] *= alpha;
          m[i] = mnew;
        }

        // 4. acc += p_j v_j over the keys that weigh for some row, VG value rows loaded together
        // (their loads in flight at once: a decode warp has one row and is bound by the latency).
        const unsigned kmask = __ballot_sync(full, any);
#pragma unroll 1
        for (int j0 = 0; j0 < BK; j0 += VG) {
          if (((kmask >> j0) & vg_mask) == 0) continue; // warp-uniform
          float vv[VG][NC];
#pragma unroll
          for (int jj = 0; jj < VG; ++jj) {
            const bool on = (kmask >> (j0 + jj)) & 1u;
            const index_t ja = jb + j0 + jj;
            // The value row of key ja (only formed, and read, when some row weighs it).
            const Act* vr = nullptr;
            index_t vs = 0;
            if (on) {
              if (ja < hist) {
                vr = &pr.ring_v(hs, ja % W, hv, 0);
                vs = pr.ring_v.stride[3];
              } else {
                vr = &pr.v(bq, begin + (ja - hist), hv, 0);
                vs = pr.v.stride[3];
              }
            }
#pragma unroll
            for (int c = 0; c < NC; ++c) {
              const int d = lane + 32 * c;
              vv[jj][c] = on && d < D ? load_as<float>(vr[index_t(d) * vs]) : 0.0f;
            }
          }
#pragma unroll
          for (int jj = 0; jj < VG; ++jj)
#pragma unroll
            for (int i = 0; i < RW; ++i) {
              const float pj = __shfl_sync(full, pw[i], j0 + jj);
#pragma unroll
              for (int c = 0; c < NC; ++c)
                acc[i][c] = fmaf(pj, vv[jj][c], acc[i][c]);
            }
        }
      }

      // Results of the warp's rows in this segment.
#pragma unroll
      for (int i = 0; i < RW; ++i) {
        if (i < ia || i >= ib) continue;
        const index_t t = tq0 + i;
        if (pr.splits > 1) {
          const index_t part = (t * Hq + h) * pr.splits + split;
          if (lane == 0) {
            pr.part_ml[2 * part] = m[i];
            pr.part_ml[2 * part + 1] = l[i];
          }
#pragma unroll
          for (int c = 0; c < NC; ++c) {
            const index_t d = lane + 32 * c;
            if (d < D) pr.part_acc[part * D + d] = acc[i][c];
          }
        } else {
          const float inv =
              1.0f / l[i]; // l >= 1: the row has a key (its own), the largest weighs 1
#pragma unroll
          for (int c = 0; c < NC; ++c) {
            const index_t d = lane + 32 * c;
            if (d < D) pr.o(bq, t, h, d) = store_as<Act>(acc[i][c] * inv);
          }
        }
      }
    }
  }
}

/// Decode with a split window: o[b, h] = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s over
/// the pieces s the row uses (swska_split_count of its keys; M their largest max). One CTA per
/// (row, head), grid-stride: warp 0 turns the pieces' (m, l) into weights in shared memory (PL =
/// MaxSplits / 32 pieces per lane); then warp w sums pieces w, w + NW, ... of every column, lane
/// c owning 4 consecutive columns of each 128-column block (float4 loads where D % 4 == 0), with
/// combine_loads pieces' loads in flight per thread (a full window at B = 1 uses about 120 pieces,
/// which one column per thread summed at one L2 round trip per 4 pieces); the warps' sums meet in
/// shared memory, added in warp order. Rows that use one piece were written
/// by the attend kernel itself, and skipped rows (swska_decode_row_span) are left untouched, like
/// the attend kernel leaves them.
template <int Threads, int MaxSplits, int Loads, class Act>
__global__ void __launch_bounds__(Threads)
    swska_combine_kernel(const tensor_view<Act, 3> o, const float* part_acc, const float* part_ml,
                         const int splits, const index_t min_keys, const std::int32_t* slot,
                         const std::int64_t* position, const index_t P, const index_t W,
                         const int window_left) {
  begin_after_prior_kernels();
  static_assert(MaxSplits % 32 == 0 && Threads % 32 == 0, "whole pieces per lane of warp 0");
  constexpr int PL = MaxSplits / 32, NW = Threads / 32;
  constexpr int BLOCK = 128;                       // columns per block: 4 per lane
  __shared__ float s_w[MaxSplits];                 // the pieces' weights e^(m_s - M) / L
  __shared__ __align__(16) float s_sum[NW][BLOCK]; // each warp's sums of one column block
  const index_t Hq = o.shape[1], D = o.shape[2], rows = o.shape[0] * Hq;
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const bool vec = D % 4 == 0; // (part_acc rows of D floats from an aligned workspace)
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const index_t b = r / Hq, h = r % Hq;
    const swska_decode_span sp = swska_decode_row_span(slot, position, b, P, W, window_left);
    if (!sp.on) continue; // CTA-uniform
    const int used = int(swska_split_count(sp.keys(), splits, min_keys));
    if (used <= 1) continue; // written by the attend kernel
    const float* ml = part_ml + 2 * r * splits;
    __syncthreads(); // the previous row's readers of s_w are done
    if (tid < 32) {
      float m[PL], l[PL];
      float mx = -INFINITY;
#pragma unroll
      for (int i = 0; i < PL; ++i) {
        const int s = tid + 32 * i;
        m[i] = -INFINITY;
        l[i] = 0.0f;
        if (s < used && ml[2 * s + 1] > 0.0f) { // (every used piece has a key: l >= 1)
          m[i] = ml[2 * s];
          l[i] = ml[2 * s + 1];
        }
        mx = fmaxf(mx, m[i]);
      }
      const float M = swska_warp_max(mx);
      float e[PL], L = 0.0f;
#pragma unroll
      for (int i = 0; i < PL; ++i) {
        e[i] = l[i] > 0.0f ? expf(m[i] - M) : 0.0f;
        L = fmaf(e[i], l[i], L);
      }
      const float inv = 1.0f / swska_warp_sum(L);
#pragma unroll
      for (int i = 0; i < PL; ++i)
        if (tid + 32 * i < used) s_w[tid + 32 * i] = e[i] * inv;
    }
    __syncthreads();
    const float* acc = part_acc + r * splits * D;
    for (index_t d0 = 0; d0 < D; d0 += BLOCK) {
      const index_t d = d0 + 4 * lane; // this lane's 4 columns
      const int nd = d >= D ? 0 : D - d < 4 ? int(D - d) : 4;
      float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      for (int s0 = warp; s0 < used; s0 += NW * Loads) {
        float4 x[Loads];
#pragma unroll
        for (int u = 0; u < Loads; ++u) { // the loads first: Loads pieces in flight
          const int s = s0 + u * NW;
          x[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
          if (s < used && nd > 0) {
            const float* src = acc + index_t(s) * D + d;
            if (vec) {
              x[u] = __ldcg(reinterpret_cast<const float4*>(src));
            } else {
              x[u].x = __ldcg(src);
              if (nd > 1) x[u].y = __ldcg(src + 1);
              if (nd > 2) x[u].z = __ldcg(src + 2);
              if (nd > 3) x[u].w = __ldcg(src + 3);
            }
          }
        }
#pragma unroll
        for (int u = 0; u < Loads; ++u) {
          const int s = s0 + u * NW;
          const float ws = s < used ? s_w[s] : 0.0f;
          sum[0] = fmaf(ws, x[u].x, sum[0]);
          sum[1] = fmaf(ws, x[u].y, sum[1]);
          sum[2] = fmaf(ws, x[u].z, sum[2]);
          sum[3] = fmaf(ws, x[u].w, sum[3]);
        }
      }
      *reinterpret_cast<float4*>(&s_sum[warp][4 * lane]) =
          make_float4(sum[0], sum[1], sum[2], sum[3]);
      __syncthreads();
      for (int c = tid; c < BLOCK; c += Threads) {
        if (d0 + c >= D) continue;
        float t = 0.0f;
#pragma unroll
        for (int w = 0; w < NW; ++w)
          t += s_sum[w][c];
        o(b, h, d0 + c) = store_as<Act>(t);
      }
      __syncthreads(); // s_sum is read before the next block writes it
    }
  }
}

/// Copies H rows of D elements (row stride `sh` / `dh`, element stride `sd` / `dd`) from src to
/// dst with the 32 lanes of a warp. Dense rows (unit element strides, rows back to back) are one
/// run of H * D elements: 16-byte vectors when both ends are 16-byte aligned and the run is a
/// multiple of 16 bytes (the model's rows: D = 128 in bf16 is 256 bytes), else element by element.
template <class Act>
__device__ __forceinline__ void swska_copy_rows(Act* dst, index_t dh, index_t dd, const Act* src,
                                                index_t sh, index_t sd, index_t H, index_t D,
                                                int lane) {
  const index_t n = H * D;
  const bool dense = dd == 1 && sd == 1 && (H == 1 || (dh == D && sh == D));
  if (dense) {
    const std::uintptr_t bytes = std::uintptr_t(n) * sizeof(Act);
    if (((reinterpret_cast<std::uintptr_t>(dst) | reinterpret_cast<std::uintptr_t>(src) | bytes) &
         15u) == 0) {
      uint4* d4 = reinterpret_cast<uint4*>(dst);
      const uint4* s4 = reinterpret_cast<const uint4*>(src);
      const index_t n4 = index_t(bytes / 16);
      for (index_t i = lane; i < n4; i += 32)
        d4[i] = __ldg(s4 + i);
      return;
    }
    for (index_t i = lane; i < n; i += 32)
      dst[i] = src[i];
    return;
  }
  for (index_t e = lane; e < n; e += 32) {
    const index_t h = e / D, d = e % D;
    dst[h * dh + d * dd] = src[h * sh + d * sd];
  }
}

/// swska_ring_store: one warp per token of the (B, T) grid (grid-stride over warps). The warp finds
/// its sequence (batched: its batch row; packed: the last n with cu[n] <= t, by binary search over
/// the clamped offsets, then checks that t lies in [cu[n], cu[n + 1])), keeps only the sequence's
/// last W tokens, and copies its key and value rows into ring slot (start + i) % W. Tokens of
/// sequences whose slot is outside [0, P) (slot -1: padding) or whose start position is negative
/// or absurd are skipped: their rings stay untouched. Every token writes a different ring row
/// (for distinct slots), so there is no ordering between warps.
template <int Threads, class Act>
__global__ void __launch_bounds__(Threads)
    swska_ring_store_kernel(const swska_ring_store_args<Act> a, const index_t N) {
  begin_after_prior_kernels();
  const index_t B = a.k.shape[0], T = a.k.shape[1], Hk = a.k.shape[2], D = a.k.shape[3];
  const index_t Hv = a.v.shape[2], P = a.ring_k.shape[0], W = a.ring_k.shape[1];
  const int lane = int(threadIdx.x) & 31;
  constexpr index_t warps_per_cta = Threads / 32;
  const index_t tokens = B * T;
  for (index_t tok = index_t(blockIdx.x) * warps_per_cta + (threadIdx.x >> 5); tok < tokens;
       tok += index_t(gridDim.x) * warps_per_cta) { // warp-uniform
    const index_t bq = tok / T, t = tok % T;
    index_t n = bq, begin = 0, end = T;
    if (a.cu_seqlens) {
      if (N <= 0) break;
      index_t lo = 0, hi = N - 1; // last n with cu[n] <= t (n = 0 when none)
      while (lo < hi) {
        const index_t mid = lo + (hi - lo + 1) / 2;
        if (index_t(a.cu_seqlens[mid]) <= t)
          lo = mid;
        else
          hi = mid - 1;
      }
      n = lo;
      begin = swska_clamp(index_t(a.cu_seqlens[n]), 0, T);
      end = swska_clamp(index_t(a.cu_seqlens[n + 1]), begin, T);
      if (t < begin || t >= end) continue; // garbage offsets: no sequence owns this token
    }
    const index_t i = t - begin, len = end - begin;
    if (len - i > W) continue; // not among the sequence's last W tokens
    const index_t s = a.slot ? index_t(a.slot[n]) : n;
    if (s < 0 || s >= P) continue;
    const index_t start = a.start_position ? index_t(a.start_position[n]) : 0;
    if (start < 0 || start > kSwskaCudaMaxPosition) continue;
    const index_t w = (start + i) % W;
    swska_copy_rows(&a.ring_k(s, w, 0, 0), a.ring_k.stride[2], a.ring_k.stride[3],
                    &a.k(bq, t, 0, 0), a.k.stride[2], a.k.stride[3], Hk, D, lane);
    swska_copy_rows(&a.ring_v(s, w, 0, 0), a.ring_v.stride[2], a.ring_v.stride[3],
                    &a.v(bq, t, 0, 0), a.v.stride[2], a.v.stride[3], Hv, D, lane);
  }
}

// ---- Decode (flash decoding) ----

/// Tile shape of swska_decode_kernel for head-dim bucket MaxD: Threads threads, each owning
/// `elems` consecutive columns of one query head (one 16-byte vector of a 16-bit value row), so a
/// CTA serves `heads` = Threads * 8 / MaxD query heads (32, 16, 8 for MaxD 64, 128, 256); in the
/// scores, warp w serves heads w, w + warps, ... (heads_per_warp) with one key per lane.
template <int MaxD, int Threads> struct swska_decode_tile {
  static constexpr int threads = Threads, warps = Threads / 32;
  static constexpr int elems = 8;
  static constexpr int cols = MaxD / elems; // threads per query head
  static constexpr int heads = threads / cols;
  static constexpr int heads_per_warp = heads / warps;
  static constexpr int keys = 32; // key tile: one key per lane in the scores
  static_assert(MaxD % 32 == 0 && MaxD <= 256 && Threads % 32 == 0, "tile shape");
  static_assert(heads % warps == 0 && heads_per_warp >= 1, "whole heads per warp");
  static_assert((heads * MaxD + MaxD * keys + heads * (keys + 4) + 2 * MaxD) * sizeof(float) <=
                    48 * 1024,
                "static shared memory above 48 KiB");
};

/// Query heads per decode CTA for head dim D (the bucket of swska_decode_dispatch).
template <int Sm> constexpr index_t swska_decode_cta_heads(index_t D) noexcept {
  constexpr int T = swska_policy<Sm>::decode_threads;
  return D <= 64    ? swska_decode_tile<64, T>::heads
         : D <= 128 ? swska_decode_tile<128, T>::heads
                    : swska_decode_tile<256, T>::heads;
}

/// The G query heads of one key head cut into `chunks` CTAs of `heads` heads (the last may have
/// fewer; none is empty): as few chunks as `cta_heads` allows, balanced.
struct swska_head_chunks {
  index_t chunks = 1, heads = 1;
};
RODIMUS_HOST_DEVICE inline swska_head_chunks swska_decode_head_chunks(index_t G,
                                                                      index_t cta_heads) noexcept {
  swska_head_chunks c;
  const index_t n = (G + cta_heads - 1) / cta_heads;
  c.heads = (G + n - 1) / n;
  c.chunks = (G + c.heads - 1) / c.heads;
  return c;
}

/// RoPE inside the decode step (swska_decode_args::rotary_dim > 0): the rotated channels and
/// theta_j of each pair, computed on the host with the reference's expression (rotary_theta, as
/// the rotary kernel does: the device's pow may differ by an ulp). D <= 256: at most 128 pairs.
struct swska_decode_rope {
  static constexpr int max_pairs = 128;
  int dim = 0; // 0: q and k arrive rotated
  float theta[max_pairs] = {};
};

/// Everything one decode launch needs besides the primitive's arguments.
struct swska_decode_plan {
  float scale = 1.0f;
  int splits = 1;                    // pieces of the window (> 1: partials, then the combine)
  index_t min_keys = 1;              // keys per piece at least (swska_split_keys)
  swska_head_chunks chunk;           // query heads of a key head per CTA
  float* part_acc = nullptr;         // (B * Hq * splits, D)
  float* part_ml = nullptr;          // (B * Hq * splits, 2): running max, sum
  bool vec_q = false, vec_k = false; // 16-byte vectors for q; for the ring's keys
  bool vec_v = false;                // for the values (ring_v and v)
  int prefetch_keys = 0;             // ring rows of each item's piece asked into L2 first
  swska_decode_rope rope;
};

/// Whether 8 consecutive elements along the last dimension of `x` can be read as 16-byte vectors
/// at every index with a multiple of 8 there (unit inner stride, 16-byte aligned base and strides);
/// the head dim must be a multiple of 8 too (checked by the caller).
template <class T, int R> bool swska_vector_ok(const tensor_view<T, R>& x) noexcept {
  constexpr index_t per = index_t(16 / sizeof(T));
  if (!x.data || x.stride[R - 1] != 1) return false;
  if (reinterpret_cast<std::uintptr_t>(x.data) % 16 != 0) return false;
  for (int d = 0; d + 1 < R; ++d)
    if (x.stride[d] % per != 0) return false;
  return true;
}

/// The 16 / sizeof(Act) elements of Act in a 16-byte vector as f32 (lower address first).
template <class Act> __device__ __forceinline__ void swska_unpack16(const uint4 u, float* out) {
  const std::uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (std::is_same_v<Act, float>) {
      out[i] = __uint_as_float(w[i]);
    } else if constexpr (std::is_same_v<Act, f16>) {
      out[2 * i] = __half2float(__ushort_as_half((unsigned short)(w[i] & 0xffffu)));
      out[2 * i + 1] = __half2float(__ushort_as_half((unsigned short)(w[i] >> 16)));
    } else {
      static_assert(std::is_same_v<Act, bf16>, "f32, bf16 or f16");
      out[2 * i] = load_as<float>(bf16::from_bits(std::uint16_t(w[i] & 0xffffu)));
      out[2 * i + 1] = load_as<float>(bf16::from_bits(std::uint16_t(w[i] >> 16)));
    }
  }
}

/// 16-byte vectors holding 8 elements of Act.
template <class Act> constexpr int swska_vecs8 = int(8 * sizeof(Act) / 16);

/// Eight consecutive elements (element stride sd) at p as f32: 16-byte vectors when `vec` (then
/// all 8 exist), else the first min(n, 8) one by one and zeros after them.
template <class Act>
__device__ __forceinline__ void swska_load8(const Act* p, index_t sd, index_t n, bool vec,
                                            float (&x)[8]) {
  if (vec) {
#pragma unroll
    for (int r = 0; r < swska_vecs8<Act>; ++r)
      swska_unpack16<Act>(__ldg(reinterpret_cast<const uint4*>(p) + r),
                          x + r * (16 / int(sizeof(Act))));
    return;
  }
#pragma unroll
  for (int i = 0; i < 8; ++i)
    x[i] = i < n ? load_as<float>(p[index_t(i) * sd]) : 0.0f;
}

/// Channel d < 2 half of a row after RoPE (primitives/rotary.hpp), as rotary stores it: in f32 from
/// the channel's value `own` and its pair's `partner` (channel d + half below half, d - half
/// above), with the pair's cos / sin from the table (already rounded to Act), rounded to Act.
template <class Act>
__device__ __forceinline__ float swska_rope_channel(float own, float partner, int d, int half,
                                                    const float* cs, const float* sn) {
  const float y = d < half ? rotary_first(own, partner, cs[d], sn[d])
                           : rotary_second(partner, own, cs[d - half], sn[d - half]);
  return load_as<float>(store_as<Act>(y));
}

/// The new keys of row b after RoPE into ring row (s, w), by the 32 lanes of a warp, element by
/// element (Hk x D elements: a few per lane).
template <class Act>
__device__ void swska_store_rotated_key(const swska_decode_args<Act>& a, index_t b, index_t s,
                                        index_t w, int half, const float* cs, const float* sn,
                                        int lane) {
  const index_t Hk = a.k.shape[1], D = a.k.shape[2], sd = a.k.stride[2];
  for (index_t e = lane; e < Hk * D; e += 32) {
    const index_t hk = e / D;
    const int d = int(e % D);
    const Act* row = &a.k(b, hk, 0);
    float y = load_as<float>(row[d * sd]);
    if (d < 2 * half)
      y = swska_rope_channel<Act>(y, load_as<float>(row[(d < half ? d + half : d - half) * sd]), d,
                                  half, cs, sn);
    a.ring_k(s, w, hk, d) = store_as<Act>(y);
  }
}

/// One work item of the decode step: item = ((b Hk + hk) chunks + chunk) splits + piece, i.e. row
/// b, key head hk, chunk of its query heads (g0 .. g0 + nh - 1 of the G = Hq / Hk sharing hk) and
/// piece of the row's window (keys lo .. hi; the row's own position p = the span's hi). `on` is
/// false for a row swska_decode_span_of turns off and for a piece past the row's keys (both
/// CTA-uniform). Uncached: slot and position read around L1 (__ldcg), for a reader before the
/// overlapped wait (an earlier kernel may still write them).
struct swska_decode_work {
  bool on = false;
  index_t b = 0, hk = 0, chunk = 0, s = 0, p = 0, lo = 0, hi = -1, g0 = 0;
  int piece = 0, pieces = 0, nh = 0; // pieces: how many the row uses
  /// Ring keys of the piece (its keys but position p, which comes from k / v).
  __device__ index_t ring_keys() const { return hi == p ? hi - lo : hi - lo + 1; }
};

template <bool Uncached, class Act>
__device__ __forceinline__ swska_decode_work swska_decode_item(const swska_decode_args<Act>& a,
                                                               const swska_decode_plan& pl,
                                                               index_t item) {
  swska_decode_work w;
  index_t rest = item;
  w.piece = int(rest % pl.splits);
  rest /= pl.splits;
  w.chunk = rest % pl.chunk.chunks;
  rest /= pl.chunk.chunks;
  const index_t Hk = a.k.shape[1], G = a.q.shape[1] / Hk;
  w.hk = rest % Hk;
  w.b = rest / Hk;
  const index_t P = a.ring_k.shape[0], W = a.ring_k.shape[1];
  const std::int32_t* slot = a.slot ? a.slot + w.b : nullptr;
  const std::int64_t* position = a.position + w.b;
  w.s = slot ? index_t(Uncached ? __ldcg(slot) : *slot) : w.b;
  const swska_decode_span sp = swska_decode_span_of(
      w.s, index_t(Uncached ? __ldcg(position) : *position), P, W, a.window_left);
  if (!sp.on) return w;
  w.pieces = int(swska_split_count(sp.keys(), pl.splits, pl.min_keys));
  if (w.piece >= w.pieces) return w;
  const index_t per = swska_split_keys(sp.keys(), pl.splits, pl.min_keys);
  w.on = true;
  w.p = sp.hi;
  w.lo = sp.lo + index_t(w.piece) * per;
  w.hi = w.lo + per - 1 < sp.hi ? w.lo + per - 1 : sp.hi;
  w.g0 = w.chunk * pl.chunk.heads;
  w.nh = int(G - w.g0 < pl.chunk.heads ? G - w.g0 : pl.chunk.heads);
  return w;
}

/// Asks L2 for the ring rows the CTA's first item reads first (pl.prefetch_keys keys from the
/// start of its piece: the shared key head's row and the value rows of the item's query heads),
/// before the kernel's overlapped wait, so that they arrive while the projection before it still
/// runs instead of one HBM round trip per tile after it. A prefetch is only a hint and changes no
/// result: slot and position are read around L1 (__ldcg, an earlier kernel may still write them;
/// the item reads them again after the wait), and the rows named are inside the rings whatever
/// those values are (swska_decode_span_of's checks). Ring positions before p were written by
/// earlier steps; position p itself is not prefetched (it comes from k and v).
template <int MaxD, int Threads, class Act>
__device__ __forceinline__ void swska_decode_prefetch(const swska_decode_args<Act>& a,
                                                      const swska_decode_plan& pl) {
  using tile = swska_decode_tile<MaxD, Threads>;
  const index_t B = a.q.shape[0], Hk = a.k.shape[1], Hv = a.v.shape[1];
  const index_t items = B * Hk * pl.chunk.chunks * pl.splits;
  if (pl.prefetch_keys <= 0 || index_t(blockIdx.x) >= items) return;
  const swska_decode_work it = swska_decode_item<true>(a, pl, index_t(blockIdx.x));
  if (!it.on) return;
  const index_t n = it.ring_keys() < pl.prefetch_keys ? it.ring_keys() : pl.prefetch_keys;
  if (n <= 0) return;
  const index_t s = it.s, lo = it.lo, hk = it.hk, g0 = it.g0, W = a.ring_k.shape[1];
  constexpr int line = 128; // bytes a prefetch brings
  const index_t D = a.q.shape[2], per_row = (D * index_t(sizeof(Act)) + line - 1) / line;
  // The key row, then the value row of each of the chunk's heads (with shared value heads, Hv < Hq,
  // one row is named once per query head reading it: repeated hints, counted so by the budget).
  const index_t rows_per_key = 1 + it.nh;
  const index_t total = n * rows_per_key * per_row;
  for (index_t u = threadIdx.x; u < total; u += tile::threads) {
    const index_t piece_line = u % per_row, row = (u / per_row) % rows_per_key;
    const index_t j = u / (per_row * rows_per_key);
    const index_t w = (lo + j) % W;
    const Act* base =
        row == 0 ? &a.ring_k(s, w, hk, 0) : &a.ring_v(s, w, (hk + (g0 + row - 1) * Hk) % Hv, 0);
    asm volatile(
        "prefetch.global.L2 [%0];" ::"l"(reinterpret_cast<const char*>(base) + piece_line * line));
  }
}

/// One decode step (swska_decode; the decomposition is described at the top of this file). Work
/// item = (row b, key head hk, chunk of its query heads, piece of the row's window); a CTA loops
/// over items (grid-stride). Thread t owns query head hl = t / cols of the chunk and columns
/// d0 .. d0 + 7 (d0 = 8 (t % cols)): it stages that part of q, and accumulates that part of the
/// output. Per tile of 32 keys of the piece:
///   1. the key rows -> shared (f32, transposed and XOR-swizzled: s_k[d][j ^ (d % 32)]);
///   2. warp w: the scores of its heads against key `lane`, online softmax per head (warp
///      max / sum by shuffles, f32 expf), the weights p and the rescaling factor -> shared;
///   3. every thread: acc = alpha acc + sum_j p_j v_j[d0 .. d0 + 7], the value rows loaded
///      decode_key_unroll 16-byte vectors in flight per thread when the layout allows them.
/// A row's keys are positions lo .. p: those before p from its ring (slot position % W), p itself
/// from k / v (its key staged in shared memory once per item, s_kown). The piece's result goes to
/// o (the row uses one piece) or to the partials for swska_combine_kernel. The item of head chunk
/// 0 / key head 0 / piece 0 of each row also copies the new k, v into ring slot p % W, which no
/// reader of the row touches (it reads positions p - W + 1 .. p - 1 from the ring). Rows that
/// swska_decode_item turns off, and pieces past a row's keys, leave at once (CTA-uniform).
/// RoPE inside the step (pl.rope.dim > 0): while q and the own key are staged, the first threads
/// compute the cos / sin of the row's position for the rope.dim / 2 pairs into shared memory (f32
/// sincosf of f32(p) theta_j, rounded to Act, as the rotary kernel does); after one more barrier
/// the staged q rows and own key are rotated pair by pair in place (rounded to Act, as rotary
/// stores them: every CTA of the row gets the same own key) and warp 0 of the storing item writes
/// the new keys rotated into the ring (the same function of the same inputs, so the ring holds
/// the key the row attended). Rotating in shared memory, not in the registers that stage q, keeps
/// the kernel free of spills (the register version spilled up to 100 bytes).
template <int MaxD, int Threads, int KeyUnroll, class Act>
__global__ void __launch_bounds__(Threads, 2) // 2: swska_policy::decode_ctas_per_sm
    swska_decode_kernel(const swska_decode_args<Act> a, const swska_decode_plan pl) {
  swska_decode_prefetch<MaxD, Threads>(a,
                                       pl); // before the wait: rows no kernel of this step writes
  begin_after_prior_kernels();
  using tile = swska_decode_tile<MaxD, Threads>;
  constexpr int NT = tile::threads, NW = tile::warps, HC = tile::heads, HPW = tile::heads_per_warp;
  constexpr int BK = tile::keys, COLS = tile::cols;
  constexpr int VR = swska_vecs8<Act>;                        // 16-byte vectors per 8 values
  constexpr int KU = KeyUnroll / VR > 0 ? KeyUnroll / VR : 1; // value rows in flight per thread
  static_assert(BK == 32 && BK % KU == 0, "key tile: one key per lane, whole unroll groups");
  __shared__ __align__(16) float s_q[HC][MaxD]; // the chunk's query rows (zero past D and nh)
  __shared__ float s_k[MaxD][BK];               // key tile, s_k[d][j ^ (d % 32)]
  __shared__ float s_p[HC][BK + 1];             // the tile's weights per head (+1: no conflicts)
  __shared__ float s_alpha[HC];                 // the tile's rescaling of each head's sums
  __shared__ float s_ml[HC][2];                 // each head's final max and sum
  __shared__ float s_cos[MaxD / 2], s_sin[MaxD / 2]; // RoPE: cos / sin of the row's pairs
  __shared__ __align__(16) float s_kown[MaxD];       // the row's own key (zero past D)

  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const index_t B = a.q.shape[0], Hq = a.q.shape[1], D = a.q.shape[2];
  const index_t Hk = a.k.shape[1], Hv = a.v.shape[1];
  const index_t W = a.ring_k.shape[1];
  const int D8 = int((D + 7) & ~index_t(7));        // s_q and s_k are zero past D
  const int hl = tid / COLS, d0 = (tid % COLS) * 8; // this thread's head (in the chunk), columns
  const index_t items = B * Hk * pl.chunk.chunks * pl.splits;
  const int half = pl.rope.dim / 2; // RoPE pairs (0: q and k arrive rotated)

  for (index_t item = blockIdx.x; item < items; item += gridDim.x) {
    // The row's keys and this piece of them (CTA-uniform): a padding row (slot -1), a bad slot /
    // position or a piece past the row's keys writes nothing.
    const swska_decode_work it = swska_decode_item<false>(a, pl, item);
    if (!it.on) continue;
    const index_t b = it.b, hk = it.hk, chunk = it.chunk, s = it.s, p = it.p, lo = it.lo;
    const index_t hi = it.hi, g0 = it.g0; // this chunk's query heads: h = hk + (g0 + i) Hk, i < nh
    const int piece = it.piece, used = it.pieces, nh = it.nh;
    const bool mine = hl < nh && d0 < D; // this thread owns output columns
    const index_t h = hk + (g0 + (hl < nh ? hl : 0)) * Hk, hv = h % Hv;
    const bool stores = hk == 0 && chunk == 0 && piece == 0; // the new k, v into the ring
    const index_t w = p % W;                                 // (their ring slot)

    __syncthreads(); // the previous item's readers of s_q, s_kown, s_ml, s_cos, s_sin are done
    if (half > 0)    // RoPE: the cos / sin of the row's position for every pair
      for (int j = tid; j < half; j += NT) {
        float sn, cs;
        sincosf(rotary_angle(p, pl.rope.theta[j]), &sn, &cs);
        s_cos[j] = rotary_table_value<Act>(cs);
        s_sin[j] = rotary_table_value<Act>(sn);
      }
    // The new key (unless RoPE rotates it first, below) and value into the ring: warps 0 and 1 of
    // one CTA per row.
    if (stores && warp == 0 && half == 0)
      swska_copy_rows(&a.ring_k(s, w, 0, 0), a.ring_k.stride[2], a.ring_k.stride[3], &a.k(b, 0, 0),
                      a.k.stride[1], a.k.stride[2], Hk, D, lane);
    else if (stores && warp == 1)
      swska_copy_rows(&a.ring_v(s, w, 0, 0), a.ring_v.stride[2], a.ring_v.stride[3], &a.v(b, 0, 0),
                      a.v.stride[1], a.v.stride[2], Hv, D, lane);
    {
      float x[8];
      if (mine)
        swska_load8(&a.q(b, h, d0), a.q.stride[2], D - d0, pl.vec_q, x);
      else
#pragma unroll
        for (int e = 0; e < 8; ++e)
          x[e] = 0.0f;
      *reinterpret_cast<float4*>(&s_q[hl][d0]) = make_float4(x[0], x[1], x[2], x[3]);
      *reinterpret_cast<float4*>(&s_q[hl][d0 + 4]) = make_float4(x[4], x[5], x[6], x[7]);
    }
    // The row's own key (key head hk) -> shared: the key tile holding position p reads it there.
    for (int d = tid; d < MaxD; d += NT)
      s_kown[d] = d < D ? load_as<float>(a.k(b, hk, d)) : 0.0f;
    // RoPE on the staged q rows and own key, pair by pair in place, and the ring's new key.
    if (half > 0) {
      __syncthreads();
      if (stores && warp == 0) swska_store_rotated_key(a, b, s, w, half, s_cos, s_sin, lane);
      for (int u = tid; u < (HC + 1) * half; u += NT) {
        const int r = u / half, j = u % half;
        float* x = r < HC ? s_q[r] : s_kown;
        const float x0 = x[j], x1 = x[j + half];
        x[j] = swska_rope_channel<Act>(x0, x1, j, half, s_cos, s_sin);
        x[j + half] = swska_rope_channel<Act>(x1, x0, j + half, half, s_cos, s_sin);
      }
    }
    // (all of it made visible by the barrier that opens the first key tile)

    float m[HPW], l[HPW], acc[8];
#pragma unroll
    for (int i = 0; i < HPW; ++i) {
      m[i] = -INFINITY;
      l[i] = 0.0f;
    }
#pragma unroll
    for (int e = 0; e < 8; ++e)
      acc[e] = 0.0f;
    // This thread's value columns in the ring (slot 0) and in v (the row's own key).
    const Act* v_ring = mine ? &a.ring_v(s, 0, hv, d0) : nullptr;
    const Act* v_new = mine ? &a.v(b, hv, d0) : nullptr;

    for (index_t jb = lo; jb <= hi; jb += BK) {
      const int nk = int(hi - jb + 1 < BK ? hi - jb + 1 : BK); // keys jb .. jb + nk - 1
      const index_t w0 = jb % W; // ring slot of key jb (+ j, minus W past the end: nk <= W)
      __syncthreads();           // s_q is written; the previous tile's readers are done

      // 1. the key tile: lane j of a warp loads 8 columns of key j (conflict-free stores).
      for (int u = tid; u < BK * COLS; u += NT) {
        const int j = u % BK, dk = (u / BK) * 8;
        float x[8];
        if (j < nk && dk < D) {
          const index_t ja = jb + j;
          if (ja < p) {
            const index_t sl = w0 + j < W ? w0 + j : w0 + j - W;
            swska_load8(&a.ring_k(s, sl, hk, dk), a.ring_k.stride[3], D - dk, pl.vec_k, x);
          } else { // the row's own key, staged in s_kown
#pragma unroll
            for (int e = 0; e < 8; ++e)
              x[e] = s_kown[dk + e];
          }
        } else {
#pragma unroll
          for (int e = 0; e < 8; ++e)
            x[e] = 0.0f;
        }
#pragma unroll
        for (int e = 0; e < 8; ++e)
          s_k[dk + e][j ^ ((dk + e) & 31)] = x[e];
      }
      __syncthreads();

      // 2. scores of key jb + lane for the warp's heads, online softmax per head.
      float sc[HPW];
#pragma unroll
      for (int i = 0; i < HPW; ++i)
        sc[i] = 0.0f;
#pragma unroll 2
      for (int d = 0; d < D8; d += 4) {
        const float k0 = s_k[d][lane ^ (d & 31)], k1 = s_k[d + 1][lane ^ ((d + 1) & 31)];
        const float k2 = s_k[d + 2][lane ^ ((d + 2) & 31)];
        const float k3 = s_k[d + 3][lane ^ ((d + 3) & 31)];
#pragma unroll
        for (int i = 0; i < HPW; ++i) {
          const float4 qv = *reinterpret_cast<const float4*>(&s_q[warp + NW * i][d]);
          sc[i] = fmaf(qv.x, k0, sc[i]);
          sc[i] = fmaf(qv.y, k1, sc[i]);
          sc[i] = fmaf(qv.z, k2, sc[i]);
          sc[i] = fmaf(qv.w, k3, sc[i]);
        }
      }
#pragma unroll
      for (int i = 0; i < HPW; ++i) {
        const int hh = warp + NW * i;
        if (hh >= nh) continue; // warp-uniform
        const float x = lane < nk ? pl.scale * sc[i] : -INFINITY;
        const float mnew = fmaxf(m[i], swska_warp_max(x)); // finite: key jb is in the tile
        const float alpha = expf(m[i] - mnew);             // 0 on the first tile (m = -inf)
        const float pj = lane < nk ? expf(x - mnew) : 0.0f;
        l[i] = l[i] * alpha + swska_warp_sum(pj);
        m[i] = mnew;
        s_p[hh][lane] = pj;
        if (lane == 0) s_alpha[hh] = alpha;
      }
      __syncthreads();

      // 3. acc = alpha acc + sum_j p_j v_j over the tile's keys (KU value rows in flight).
      if (mine) {
        const float alpha = s_alpha[hl];
#pragma unroll
        for (int e = 0; e < 8; ++e)
          acc[e] *= alpha;
        auto value_row = [&](int j) { // this thread's 8 values of key jb + j
          if (jb + j < p) {
            const index_t sl = w0 + j < W ? w0 + j : w0 + j - W;
            return v_ring + sl * a.ring_v.stride[1];
          }
          return v_new;
        };
        if (pl.vec_v) {
          for (int j0 = 0; j0 < nk; j0 += KU) {
            uint4 raw[KU][VR];
#pragma unroll
            for (int jj = 0; jj < KU; ++jj) {
              const int j = j0 + jj;
              const uint4* src = j < nk ? reinterpret_cast<const uint4*>(value_row(j)) : nullptr;
#pragma unroll
              for (int r = 0; r < VR; ++r)
                raw[jj][r] = src ? __ldg(src + r) : make_uint4(0u, 0u, 0u, 0u);
            }
#pragma unroll
            for (int jj = 0; jj < KU; ++jj) {
              const float pj = s_p[hl][j0 + jj]; // 0 past nk (and the values are zeros)
              float x[8];
#pragma unroll
              for (int r = 0; r < VR; ++r)
                swska_unpack16<Act>(raw[jj][r], x + r * (16 / int(sizeof(Act))));
#pragma unroll
              for (int e = 0; e < 8; ++e)
                acc[e] = fmaf(pj, x[e], acc[e]);
            }
          }
        } else {
          for (int j = 0; j < nk; ++j) {
            const index_t sd = jb + j < p ? a.ring_v.stride[3] : a.v.stride[2];
            float x[8];
            swska_load8(value_row(j), sd, D - d0, false, x);
            const float pj = s_p[hl][j];
#pragma unroll
            for (int e = 0; e < 8; ++e)
              acc[e] = fmaf(pj, x[e], acc[e]);
          }
        }
      }
    }

    // The piece's result: o (one piece) or the partial (m, l, acc) of each head.
#pragma unroll
    for (int i = 0; i < HPW; ++i) {
      const int hh = warp + NW * i;
      if (hh < nh && lane == 0) {
        s_ml[hh][0] = m[i];
        s_ml[hh][1] = l[i];
      }
    }
    __syncthreads();
    if (mine) {
      const int ne = D - d0 < 8 ? int(D - d0) : 8;
      if (used == 1) {
        const float inv = 1.0f / s_ml[hl][1]; // l >= 1: the largest weight is 1
#pragma unroll
        for (int e = 0; e < 8; ++e) // (constant indices: acc stays in registers)
          if (e < ne) a.o(b, h, d0 + e) = store_as<Act>(acc[e] * inv);
      } else {
        const index_t part = (b * Hq + h) * pl.splits + piece;
#pragma unroll
        for (int e = 0; e < 8; ++e)
          if (e < ne) pl.part_acc[part * D + d0 + e] = acc[e];
        if (d0 == 0) {
          pl.part_ml[2 * part] = s_ml[hl][0];
          pl.part_ml[2 * part + 1] = s_ml[hl][1];
        }
      }
    }
  }
}

template <int Sm, int MaxD, class Act>
status swska_decode_launch(const swska_decode_args<Act>& a, const swska_decode_plan& pl,
                           const launch_target& on) noexcept {
  using pol = swska_policy<Sm>;
  const index_t items = a.q.shape[0] * a.k.shape[1] * pl.chunk.chunks * pl.splits;
  RODIMUS_CUDA_TRY(
      launch(on, swska_decode_kernel<MaxD, pol::decode_threads, pol::decode_key_unroll, Act>,
             rows_grid(items), pol::decode_threads, 0, a, pl));
  return status::success();
}

/// The head-dim bucket switch of the decode (D <= 256 was checked).
template <int Sm, class Act>
status swska_decode_dispatch(const swska_decode_args<Act>& a, const swska_decode_plan& pl,
                             const launch_target& on) noexcept {
  const index_t D = a.q.shape[2];
  if (D <= 64) return swska_decode_launch<Sm, 64>(a, pl, on);
  if (D <= 128) return swska_decode_launch<Sm, 128>(a, pl, on);
  return swska_decode_launch<Sm, 256>(a, pl, on);
}

/// Fills the CTA layout of `pr` (heads per CTA, query groups, head chunks, token tiles) for NW
/// warps of RW rows and returns the number of work items.
template <int NW, int RW, class Act> index_t swska_layout(swska_cuda_problem<Act>& pr) noexcept {
  const index_t B = pr.q.shape[0], T = pr.q.shape[1], Hk = pr.k.shape[2];
  pr.G = pr.q.shape[2] / Hk;
  pr.GW = int(pr.G < NW ? pr.G : NW);
  pr.QW = pr.mode == swska_seq_mode::unit ? 1 : NW / pr.GW;
  pr.HC = (pr.G + pr.GW - 1) / pr.GW;
  const index_t BQ = index_t(pr.QW) * RW;
  pr.tiles = (T + BQ - 1) / BQ;
  return B * pr.tiles * Hk * pr.HC * pr.splits;
}

template <int MaxD, int NW, int RW, class Act>
status swska_attend_launch(swska_cuda_problem<Act> pr, const launch_target& on) noexcept {
  const index_t items = swska_layout<NW, RW>(pr);
  if (items == 0) return status::success();
  RODIMUS_CUDA_TRY(
      launch(on, swska_attend_kernel<MaxD, NW, RW, Act>, rows_grid(items), NW * 32, 0, pr));
  return status::success();
}

/// The head-dim bucket switch of the prefill (D <= 256 was checked).
template <int Sm, class Act>
status swska_prefill_dispatch(const swska_cuda_problem<Act>& pr, const launch_target& on) noexcept {
  using pol = swska_policy<Sm>;
  constexpr int NWs = pol::prefill_warps_small, RWs = pol::prefill_rows_small;
  constexpr int NWl = pol::prefill_warps_large, RWl = pol::prefill_rows_large;
  const index_t D = pr.q.shape[3];
  if (D <= 64) return swska_attend_launch<64, NWs, RWs>(pr, on);
  if (D <= 128) return swska_attend_launch<128, NWs, RWs>(pr, on);
  return swska_attend_launch<256, NWl, RWl>(pr, on);
}

/// The fewest keys of a decode piece: cuda_tuning's swska_decode_min_keys, else the policy's.
template <int Sm> index_t swska_decode_min_keys(const cuda_tuning& t) noexcept {
  return t.swska_decode_min_keys > 0 ? index_t(t.swska_decode_min_keys)
                                     : swska_policy<Sm>::decode_min_split_keys;
}
inline bool swska_decode_tuning_ok(const cuda_tuning& t) noexcept {
  return t.swska_decode_min_keys >= 0 && t.swska_decode_min_keys <= 4096;
}

/// Pieces the decode window is split into (1: no split, no workspace), pieces of at least min_keys
/// keys (swska_decode_min_keys of the tag's tuning). Depends on shapes (B, Hq, D, W, window_left,
/// and Hk when valid) and min_keys only, and never decreases when the window grows or k is unknown
/// (one key head assumed), so a workspace sized from the shapes of q and the rings alone
/// (window_left -1, k unset: blocks/swska_layer.hpp) covers every call of those shapes with the
/// same tag (the same tuning).
template <int Sm, class Act>
index_t swska_decode_splits(const swska_decode_args<Act>& a, index_t min_keys) noexcept {
  using pol = swska_policy<Sm>;
  const index_t B = a.q.shape[0], Hq = a.q.shape[1], D = a.q.shape[2], W = a.ring_k.shape[1];
  if (B <= 0 || Hq <= 0 || D <= 0 || W <= 0) return 1;
  if (B >= pol::decode_target_ctas) return 1;
  const index_t Hk = a.k.shape[1] > 0 && Hq % a.k.shape[1] == 0 ? a.k.shape[1] : 1;
  const index_t per_row =
      Hk * swska_decode_head_chunks(Hq / Hk, swska_decode_cta_heads<Sm>(D)).chunks;
  if (per_row >= pol::decode_target_ctas) return 1;
  const index_t ctas = B * per_row;
  if (ctas >= pol::decode_target_ctas) return 1;
  const index_t keys =
      a.window_left < 0 || index_t(a.window_left) + 1 > W ? W : index_t(a.window_left) + 1;
  index_t s = (pol::decode_target_ctas + ctas - 1) / ctas;
  const index_t by_keys = (keys + min_keys - 1) / min_keys;
  if (by_keys < s) s = by_keys;
  if (pol::decode_max_splits < s) s = pol::decode_max_splits;
  return s < 1 ? 1 : s;
}

template <class T, int R> tensor_view<T, R + 1> swska_add_unit_batch(tensor_view<T, R> x) noexcept {
  tensor_view<T, R + 1> y;
  y.data = x.data;
  y.shape[0] = 1;
  y.stride[0] = 0;
  for (int d = 0; d < R; ++d) {
    y.shape[d + 1] = x.shape[d];
    y.stride[d + 1] = x.stride[d];
  }
  return y;
}

/// The tensor-core prefill of cuda_matmul::rounded (backend/cuda/swska_prefill_mma.cuh, included
/// at the end of this file): the head dims it serves, and its entry point.
inline bool swska_mma_supports(index_t D) noexcept;
template <int Sm, class Act>
status swska_prefill_mma(const swska_cuda_problem<Act>& pr, const launch_target& on, workspace ws,
                         const cuda_tuning& tuning) noexcept;

/// Whether cuda_tuning names a tile of the tensor-core SW-SKA prefill (or none: 0, 0).
inline bool swska_tuning_listed(const cuda_tuning& t) noexcept {
  const int r = t.swska_rows, k = t.swska_keys;
  return (r == 0 && k == 0) || (r == 16 && k == 64) || (r == 32 && (k == 32 || k == 64));
}
template <class Act>
void swska_mma_copy_elements(const swska_args<Act>& a, std::size_t& k_elems,
                             std::size_t& v_elems) noexcept;

} // namespace detail

/// The prefill workspace: with be.matmul == cuda_matmul::rounded, D 64 or 128 and a non-bf16
/// Act, the bf16 copies of k and v the tensor-core kernel copies its tiles from (cp.async; see
/// swska_prefill_mma.cuh); else none. A k or v left unset counts Hq heads, so a size from the
/// shape of q alone (blocks/swska_layer.hpp) covers every call with that q. A smaller workspace
/// is not an error: the kernel then converts its tiles by plain loads (slower).
template <int Sm, class Act>
std::size_t swska_prefill_workspace_bytes(const cuda<Sm>& be, const swska_args<Act>& a) noexcept {
  if constexpr (std::is_same_v<Act, bf16>) {
    (void)be;
    (void)a;
    return 0;
  } else {
    if (be.matmul != cuda_matmul::rounded || !detail::swska_mma_supports(a.q.shape[3])) return 0;
    std::size_t ke = 0, ve = 0;
    detail::swska_mma_copy_elements(a, ke, ve);
    if (ke == 0 && ve == 0) return 0;
    return workspace::sum(workspace::alignment, workspace::bytes_for<std::uint16_t>(ke),
                          workspace::bytes_for<std::uint16_t>(ve));
  }
}

/// The decode workspace: the split partials, when the window is split (see swska_policy).
template <int Sm, class Act>
std::size_t swska_decode_workspace_bytes(const cuda<Sm>& be,
                                         const swska_decode_args<Act>& a) noexcept {
  if (!detail::swska_decode_tuning_ok(be.tuning)) return 0; // (swska_decode refuses the call)
  const index_t S =
      detail::swska_decode_splits<Sm>(a, detail::swska_decode_min_keys<Sm>(be.tuning));
  if (S <= 1) return 0;
  const std::size_t parts = workspace::product(
      workspace::product(std::size_t(a.q.shape[0]), std::size_t(a.q.shape[1])), std::size_t(S));
  return workspace::sum(
      workspace::alignment,
      workspace::bytes_for<float>(workspace::product(parts, std::size_t(a.q.shape[2]))),
      workspace::bytes_for<float>(workspace::product(parts, 2)));
}

/// SW-SKA prefill on the GPU (see the top of this file). Enqueues on `be.stream`. With
/// be.matmul == cuda_matmul::rounded and D 64 or 128: the bf16 tensor-core kernel
/// (swska_prefill_mma.cuh: q, k, v, p rounded to bf16 once) where the device has the shared
/// memory for its tiles; else the f32 kernel.
template <int Sm, class Act>
[[nodiscard]] status swska_prefill(const cuda<Sm>& be, const swska_args<Act>& a,
                                   workspace ws = {}) noexcept {
  RODIMUS_TRY(swska_check(a));
  RODIMUS_REQUIRE(detail::swska_tuning_listed(be.tuning), unsupported, "tuning");
  if constexpr (!std::is_same_v<Act, float> && !std::is_same_v<Act, bf16> &&
                !std::is_same_v<Act, f16>) {
    (void)be;
    (void)ws;
    return status::fail(status_code::unsupported, "q");
  } else {
    const index_t D = a.q.shape[3];
    RODIMUS_REQUIRE(D <= 256, unsupported, "q");
    if (a.q.shape[0] == 0 || a.q.shape[1] == 0) return status::success();
    detail::swska_cuda_problem<Act> pr;
    pr.q = a.q;
    pr.k = a.k;
    pr.v = a.v;
    pr.o = a.o;
    if (a.history_k.data) { // (swska_check: then history_v and history_len are set too)
      pr.ring_k = a.history_k;
      pr.ring_v = a.history_v;
      pr.slot = a.slot;
      pr.hist_len = a.history_len;
    }
    pr.cu_seqlens = a.cu_seqlens;
    pr.num_seqs = a.cu_seqlens ? index_t(a.num_seqs) : a.q.shape[0];
    pr.mode = a.cu_seqlens ? detail::swska_seq_mode::packed : detail::swska_seq_mode::batched;
    pr.window_left = a.window_left;
    pr.scale = a.scale != 0.0f ? a.scale : float(1.0 / std::sqrt(double(D)));
    if (be.matmul == cuda_matmul::rounded && detail::swska_mma_supports(D))
      return detail::swska_prefill_mma<Sm>(pr, detail::launch_on(be), ws, be.tuning); // bf16 MMA
    return detail::swska_prefill_dispatch<Sm>(pr, detail::launch_on(be));
  }
}

/// SW-SKA decode step on the GPU (see the top of this file). Enqueues on `be.stream`; the
/// workspace (device memory) holds swska_decode_workspace_bytes(be, a) bytes.
template <int Sm, class Act>
[[nodiscard]] status swska_decode(const cuda<Sm>& be, const swska_decode_args<Act>& a,
                                  workspace ws = {}) noexcept {
  RODIMUS_TRY(swska_decode_check(a));
  RODIMUS_REQUIRE(detail::swska_decode_tuning_ok(be.tuning), unsupported, "tuning");
  if constexpr (!std::is_same_v<Act, float> && !std::is_same_v<Act, bf16> &&
                !std::is_same_v<Act, f16>) {
    (void)be;
    (void)ws;
    return status::fail(status_code::unsupported, "q");
  } else {
    const index_t B = a.q.shape[0], Hq = a.q.shape[1], D = a.q.shape[2];
    RODIMUS_REQUIRE(D <= 256, unsupported, "q");
    if (B == 0) return status::success();
    const index_t min_keys = detail::swska_decode_min_keys<Sm>(be.tuning);
    const index_t S = detail::swska_decode_splits<Sm>(a, min_keys);
    using pol = swska_policy<Sm>;
    detail::swska_decode_plan pl;
    if (S > 1) {
      pl.part_acc = ws.take<float>(std::size_t(B * Hq * S * D));
      pl.part_ml = ws.take<float>(std::size_t(B * Hq * S * 2));
      RODIMUS_REQUIRE(pl.part_acc && pl.part_ml, workspace_too_small, "workspace");
    }
    pl.scale = a.scale != 0.0f ? a.scale : float(1.0 / std::sqrt(double(D)));
    pl.splits = int(S);
    pl.min_keys = min_keys;
    pl.chunk =
        detail::swska_decode_head_chunks(Hq / a.k.shape[1], detail::swska_decode_cta_heads<Sm>(D));
    const bool d8 = D % 8 == 0;
    pl.vec_q = d8 && detail::swska_vector_ok(a.q);
    pl.vec_k = d8 && detail::swska_vector_ok(a.ring_k);
    pl.vec_v = d8 && detail::swska_vector_ok(a.ring_v) && detail::swska_vector_ok(a.v);
    static_assert(pol::decode_ctas_per_sm == 2, "swska_decode_kernel's __launch_bounds__");
    const index_t items = B * a.k.shape[1] * pl.chunk.chunks * S;
    if (pl.vec_k && pl.vec_v && // (unit inner strides: a row's elements are one run of bytes)
        items <= pol::decode_ctas_per_sm * detail::device_sm_count()) {
      // The most rows one launch could ask for: every item's first keys, at most the window.
      const index_t Hk = a.k.shape[1], W = a.ring_k.shape[1];
      const index_t keys =
          a.window_left < 0 || index_t(a.window_left) + 1 > W ? W : index_t(a.window_left) + 1;
      const std::size_t row_bytes = std::size_t(D) * sizeof(Act) * std::size_t(1 + pl.chunk.heads);
      const std::size_t budget_keys =
          pol::decode_prefetch_bytes / (row_bytes * std::size_t(B * Hk * pl.chunk.chunks));
      index_t pk =
          S * pol::decode_prefetch_keys < keys ? pol::decode_prefetch_keys : (keys + S - 1) / S;
      if (std::size_t(pk) * std::size_t(S) > budget_keys) pk = index_t(budget_keys) / S;
      pl.prefetch_keys = int(pk);
    }
    static_assert(2 * detail::swska_decode_rope::max_pairs >= 256, "a pair per 2 columns");
    pl.rope.dim = a.rotary_dim;
    for (index_t j = 0; j < index_t(a.rotary_dim) / 2; ++j) // (rotary_dim <= D <= 256: checked)
      pl.rope.theta[j] = rotary_theta(a.rotary_base, j, index_t(a.rotary_dim));
    RODIMUS_TRY(detail::swska_decode_dispatch<Sm>(a, pl, detail::launch_on(be)));
    if (S > 1) {
      constexpr int maxs = int(pol::decode_max_splits), loads = pol::combine_loads;
      const bool wide = S >= pol::combine_wide_splits;
      const int threads = wide ? pol::combine_threads_wide : pol::combine_threads;
      RODIMUS_CUDA_TRY(detail::launch(
          detail::launch_on(be),
          wide ? detail::swska_combine_kernel<pol::combine_threads_wide, maxs, loads, Act>
               : detail::swska_combine_kernel<pol::combine_threads, maxs, loads, Act>,
          detail::rows_grid(B * Hq), threads, 0, a.o, pl.part_acc, pl.part_ml, int(S), pl.min_keys,
          a.slot, a.position, a.ring_k.shape[0], a.ring_k.shape[1], a.window_left));
    }
    return status::success();
  }
}

/// swska_ring_store on the GPU (see the top of this file). Enqueues on `be.stream`.
template <int Sm, class Act>
[[nodiscard]] status swska_ring_store(const cuda<Sm>& be,
                                      const swska_ring_store_args<Act>& a) noexcept {
  RODIMUS_TRY(swska_ring_store_check(a));
  const index_t B = a.k.shape[0], T = a.k.shape[1], Hk = a.k.shape[2], D = a.k.shape[3];
  const index_t N = sequence_count(a.cu_seqlens, a.num_seqs, B);
  const index_t tokens = B * T;
  if (tokens == 0 || N == 0 || Hk * D == 0) return status::success();
  constexpr int threads = swska_policy<Sm>::ring_store_threads;
  static_assert(threads % 32 == 0, "whole warps");
  RODIMUS_CUDA_TRY(detail::launch(detail::launch_on(be),
                                  detail::swska_ring_store_kernel<threads, Act>,
                                  detail::elements_grid(tokens, threads / 32), threads, 0, a, N));
  return status::success();
}

} // namespace rodimus

#include "rodimus/backend/cuda/swska_prefill_mma.cuh"
