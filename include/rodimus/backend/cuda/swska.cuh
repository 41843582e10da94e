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
// Kernel design (one kernel template serves prefill and decode; the bf16 tensor-core prefill of
// cuda_matmul::rounded, D 64 and 128, is backend/cuda/swska_prefill_mma.cuh). Work item = (batch
// row, tile of BQ query tokens, key head hk, chunk of query heads
// [, split of the key range]); a CTA of NW warps loops over items (grid-stride). Warp w serves
// query head hk + g * Hk of the item's head chunk (g = w % GW, GW = min(Hq / Hk, NW) heads per
// CTA) and RW consecutive query tokens (query group w / GW). So one key tile in shared memory
// serves every query head sharing that key head (the whole head group for Rodimus+, Hk = 1) and
// several query tokens; the values, one head per warp (Hv = Hq in Rodimus+), are read from global
// memory (L1/L2) by the warp and reused across its RW rows.
//   per item: q rows -> shared (f32, NW*RW x MaxD); for each sequence overlapping the token tile
//   (packed batches: found by binary search in cu_seqlens; decode: each row is its own
//   "sequence" of one token whose history is its ring), walk the union of the rows' windows
//   [first(p(t0)), p(t1 - 1)] in tiles of 32 keys (from the history ring for positions before
//   the call, then from k):
//     1. the K tile -> shared, transposed and XOR-swizzled (conflict-free stores and loads);
//     2. lane j scores key j against the warp's RW rows (q broadcast from shared, float4);
//     3. online softmax per row (warp max / sum by shuffles, f32 expf, rescaling of the running
//        sum and accumulator), keys outside a row's window weigh 0;
//     4. acc[row][lane + 32c] += p_j * v_j: the keys with any weight (warp ballot) in groups of 4
//        (their value rows loaded together), p_j broadcast by shuffle.
//   The accumulator (RW x MaxD/32 per lane) stays in registers; o = acc / sum.
// Decode uses RW = 1 (one query per row) and, when rows x head chunks give fewer CTAs than
// swska_policy::decode_target_ctas, splits the window over up to `splits` CTAs (a number fixed by
// the shapes, so the workspace is too) that write partial (max, sum, acc) to the workspace; a
// second kernel combines them (one CTA per (row, head)). Each piece holds at least
// decode_min_split_keys keys: a row with a short history uses fewer pieces (swska_split_count of
// its keys) and the CTAs of the pieces past them leave at once, without staging q or writing.
// The CTA of head chunk 0 / split 0 of each row also copies the new k, v into the ring slot
// p % W, which no reader of that row touches (its own key p is read from k, and only the W - 1
// earlier positions come from the ring).
// swska_ring_store: one warp per token (binary search of its sequence in the packed offsets),
// only each sequence's last W tokens copied, 16-byte vectors for dense rows.
#pragma once

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
#include "rodimus/primitives/swska.hpp"

namespace rodimus {

/// Tuning constants of SW-SKA on cuda<Sm> (first version, not yet measured: the tuned kernels have
/// their own issue). Per head-dim bucket MaxD (64, 128, 256) the CTA has NW warps of RW query rows;
/// the static shared memory is NW*RW*MaxD (q) + 32*MaxD (key tile) floats <= 48 KiB, so no
/// opt-in is needed: MaxD 64 and 128: 8 warps x 8 rows; MaxD 256: 4 warps x 4 rows. Decode: 8
/// warps x 1 row. Decode splits the window when fewer than decode_target_ctas CTAs (4 per SM of an
/// H100 / H200) would run, into pieces of at least decode_min_split_keys keys (one key tile). A
/// decode CTA is a chain of dependent memory round trips (q, the key tile, the value groups), so
/// the window is cut into as many pieces as that allows: with 128-key pieces and 264 CTAs, one
/// batch-1 step over a full 2049-key window (bf16, 16 heads of 128) took 85 us on the H200
/// (examples/torch/bench_ops.py, 2026-12-05), about 0.1 TB/s.
/// ptxas (CUDA 13, sm_90 and sm_80): the prefill tiles take about 170 to 255 registers (one CTA
/// of 8 warps per SM), the decode tiles 80 to 180 (bf16 sm_90: MaxD 64 / 128 117 / 128 since the
/// PV step loads 8 value rows at once); no spills except the f16 / bf16 decode at MaxD 256 (and
/// f16 at 64), capped at 128 (80) registers with 70 to 180 bytes of stack, and 12 bytes in the
/// bf16 prefill at MaxD 128: occupancy and register use are the first things the tuned version
/// should address. The ring store takes 48 registers, the combine 32 (bf16, sm_90).
template <int Sm> struct swska_policy {
  static constexpr int key_tile = 32; // keys per tile: one per lane (fixed by the kernel)
  static constexpr int prefill_warps_small = 8, prefill_rows_small = 8; // MaxD 64, 128
  static constexpr int prefill_warps_large = 4, prefill_rows_large = 4; // MaxD 256
  static constexpr int decode_warps = 8;
  static constexpr index_t decode_target_ctas = 528;
  static constexpr index_t decode_min_split_keys = 32;
  static constexpr index_t decode_max_splits = 64;
  static constexpr int ring_store_threads = 256;
  static constexpr int combine_threads = 128; // one CTA per (row, head): a column d per thread
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

__device__ inline swska_decode_span swska_decode_row_span(const std::int32_t* slot,
                                                          const std::int64_t* position, index_t row,
                                                          index_t P, index_t W, int window_left) {
  swska_decode_span sp;
  const index_t s = slot ? index_t(slot[row]) : row;
  const index_t p = index_t(position[row]);
  if (s < 0 || s >= P || p < 0 || p > kSwskaCudaMaxPosition) return sp;
  sp.on = true;
  sp.hi = p;
  sp.lo = p - (W - 1);
  if (window_left >= 0 && p - window_left > sp.lo) sp.lo = p - window_left;
  if (sp.lo < 0) sp.lo = 0;
  return sp;
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
/// (row, head), grid-stride: warp 0 turns the pieces' (m, l) into weights in shared memory, then
/// thread d sums its column of the pieces' accumulators (consecutive threads, consecutive d:
/// coalesced). Skipped rows (swska_decode_row_span) are left untouched, like the attend kernel
/// leaves them.
template <int Threads, int MaxSplits, class Act>
__global__ void __launch_bounds__(Threads)
    swska_combine_kernel(const tensor_view<Act, 3> o, const float* part_acc, const float* part_ml,
                         const int splits, const index_t min_keys, const std::int32_t* slot,
                         const std::int64_t* position, const index_t P, const index_t W,
                         const int window_left) {
  begin_after_prior_kernels();
  static_assert(MaxSplits <= 64 && Threads % 32 == 0, "two pieces per lane of warp 0");
  __shared__ float s_w[MaxSplits]; // the pieces' weights e^(m_s - M) / L
  const index_t Hq = o.shape[1], D = o.shape[2], rows = o.shape[0] * Hq;
  const int tid = int(threadIdx.x);
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const index_t b = r / Hq, h = r % Hq;
    const swska_decode_span sp = swska_decode_row_span(slot, position, b, P, W, window_left);
    if (!sp.on) continue; // CTA-uniform
    const int used = int(swska_split_count(sp.keys(), splits, min_keys));
    const float* ml = part_ml + 2 * r * splits;
    __syncthreads(); // the previous row's readers of s_w are done
    if (tid < 32) {
      float m[2], l[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int s = tid + 32 * i;
        m[i] = -INFINITY;
        l[i] = 0.0f;
        if (s < used && ml[2 * s + 1] > 0.0f) { // (every used piece has a key: l >= 1)
          m[i] = ml[2 * s];
          l[i] = ml[2 * s + 1];
        }
      }
      const float M = swska_warp_max(fmaxf(m[0], m[1]));
      float e[2];
#pragma unroll
      for (int i = 0; i < 2; ++i)
        e[i] = l[i] > 0.0f ? expf(m[i] - M) : 0.0f;
      const float inv = 1.0f / swska_warp_sum(e[0] * l[0] + e[1] * l[1]);
#pragma unroll
      for (int i = 0; i < 2; ++i)
        if (tid + 32 * i < used) s_w[tid + 32 * i] = e[i] * inv;
    }
    __syncthreads();
    const float* acc = part_acc + r * splits * D;
    for (index_t d = tid; d < D; d += Threads) {
      float sum = 0.0f;
#pragma unroll 4
      for (int s = 0; s < used; ++s)
        sum = fmaf(s_w[s], acc[index_t(s) * D + d], sum);
      o(b, h, d) = store_as<Act>(sum);
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

template <int Sm, class Act>
status swska_decode_dispatch(const swska_cuda_problem<Act>& pr, const launch_target& on) noexcept {
  constexpr int NW = swska_policy<Sm>::decode_warps;
  const index_t D = pr.q.shape[3];
  if (D <= 64) return swska_attend_launch<64, NW, 1>(pr, on);
  if (D <= 128) return swska_attend_launch<128, NW, 1>(pr, on);
  return swska_attend_launch<256, NW, 1>(pr, on);
}

/// Pieces the decode window is split into (1: no split, no workspace). Depends on shapes only.
template <int Sm, class Act> index_t swska_decode_splits(const swska_decode_args<Act>& a) noexcept {
  using pol = swska_policy<Sm>;
  const index_t B = a.q.shape[0], Hq = a.q.shape[1], Hk = a.k.shape[1], W = a.ring_k.shape[1];
  if (B <= 0 || Hq <= 0 || Hk <= 0 || W <= 0 || Hq % Hk != 0) return 1;
  if (B >= pol::decode_target_ctas) return 1;
  const index_t G = Hq / Hk, GW = G < pol::decode_warps ? G : pol::decode_warps;
  const index_t per_row = Hk * ((G + GW - 1) / GW); // CTAs per row
  if (per_row >= pol::decode_target_ctas) return 1;
  const index_t ctas = B * per_row;
  if (ctas >= pol::decode_target_ctas) return 1;
  const index_t keys =
      a.window_left < 0 || index_t(a.window_left) + 1 > W ? W : index_t(a.window_left) + 1;
  index_t s = (pol::decode_target_ctas + ctas - 1) / ctas;
  const index_t by_keys = (keys + pol::decode_min_split_keys - 1) / pol::decode_min_split_keys;
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
status swska_prefill_mma(const swska_cuda_problem<Act>& pr, const launch_target& on) noexcept;

} // namespace detail

/// swska_prefill on CUDA needs no workspace.
template <int Sm, class Act>
constexpr std::size_t swska_prefill_workspace_bytes(const cuda<Sm>&,
                                                    const swska_args<Act>&) noexcept {
  return 0;
}

/// The decode workspace: the split partials, when the window is split (see swska_policy).
template <int Sm, class Act>
std::size_t swska_decode_workspace_bytes(const cuda<Sm>&,
                                         const swska_decode_args<Act>& a) noexcept {
  const index_t S = detail::swska_decode_splits<Sm>(a);
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
/// (swska_prefill_mma.cuh: q, k, v, p rounded to bf16 once); else the f32 kernel.
template <int Sm, class Act>
[[nodiscard]] status swska_prefill(const cuda<Sm>& be, const swska_args<Act>& a,
                                   workspace = {}) noexcept {
  RODIMUS_TRY(swska_check(a));
  if constexpr (!std::is_same_v<Act, float> && !std::is_same_v<Act, bf16> &&
                !std::is_same_v<Act, f16>) {
    (void)be;
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
      return detail::swska_prefill_mma<Sm>(pr, detail::launch_on(be)); // bf16 tensor cores
    return detail::swska_prefill_dispatch<Sm>(pr, detail::launch_on(be));
  }
}

/// SW-SKA decode step on the GPU (see the top of this file). Enqueues on `be.stream`; the
/// workspace (device memory) holds swska_decode_workspace_bytes(be, a) bytes.
template <int Sm, class Act>
[[nodiscard]] status swska_decode(const cuda<Sm>& be, const swska_decode_args<Act>& a,
                                  workspace ws = {}) noexcept {
  RODIMUS_TRY(swska_decode_check(a));
  if constexpr (!std::is_same_v<Act, float> && !std::is_same_v<Act, bf16> &&
                !std::is_same_v<Act, f16>) {
    (void)be;
    (void)ws;
    return status::fail(status_code::unsupported, "q");
  } else {
    const index_t B = a.q.shape[0], Hq = a.q.shape[1], D = a.q.shape[2];
    RODIMUS_REQUIRE(D <= 256, unsupported, "q");
    if (B == 0) return status::success();
    const index_t S = detail::swska_decode_splits<Sm>(a);
    detail::swska_cuda_problem<Act> pr;
    if (S > 1) {
      pr.part_acc = ws.take<float>(std::size_t(B * Hq * S * D));
      pr.part_ml = ws.take<float>(std::size_t(B * Hq * S * 2));
      RODIMUS_REQUIRE(pr.part_acc && pr.part_ml, workspace_too_small, "workspace");
    }
    pr.q = detail::swska_add_unit_batch(a.q);
    pr.k = detail::swska_add_unit_batch(a.k);
    pr.v = detail::swska_add_unit_batch(a.v);
    pr.o = detail::swska_add_unit_batch(a.o);
    pr.ring_k = a.ring_k;
    pr.ring_v = a.ring_v;
    pr.store_k = a.ring_k;
    pr.store_v = a.ring_v;
    pr.num_seqs = B;
    pr.slot = a.slot;
    pr.hist_len = a.position;
    pr.mode = detail::swska_seq_mode::unit;
    pr.decode = true;
    pr.window_left = a.window_left;
    pr.scale = a.scale != 0.0f ? a.scale : float(1.0 / std::sqrt(double(D)));
    pr.splits = int(S);
    pr.split_min_keys = swska_policy<Sm>::decode_min_split_keys;
    RODIMUS_TRY(detail::swska_decode_dispatch<Sm>(pr, detail::launch_on(be)));
    if (S > 1) {
      using pol = swska_policy<Sm>;
      RODIMUS_CUDA_TRY(detail::launch(
          detail::launch_on(be),
          detail::swska_combine_kernel<pol::combine_threads, int(pol::decode_max_splits), Act>,
          detail::rows_grid(B * Hq), pol::combine_threads, 0, a.o, pr.part_acc, pr.part_ml, int(S),
          pr.split_min_keys, a.slot, a.position, a.ring_k.shape[0], a.ring_k.shape[1],
          a.window_left));
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
