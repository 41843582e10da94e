// Shared-key sliding-window attention on CUDA (math, shapes, the window and the ring layout in
// rodimus/primitives/swska.hpp): swska_prefill (batched or packed varlen, optionally continuing
// from a history ring per sequence), swska_decode (one token per row over a slot-indexed ring
// pool) and swska_ring_store. Act: f32, bf16, f16 (f64: unsupported "q"); scores, softmax and
// accumulation in f32; head dim D <= 256 (else unsupported "q"); any strides (unit inner strides
// give coalesced accesses).
//
// Checks. Every pointer, the index arrays included (cu_seqlens, history_slot, history_len, slot,
// position, start_position), is DEVICE memory, so the entry points run only the shape checks
// (swska_check, swska_decode_check, swska_ring_store_check: the same status as on the CPU for
// every shape error) and then enqueue kernels on be.stream; they never allocate, synchronise or
// print. The contents of the index arrays are not validated (the model runner does it on the
// host); the kernels never read or write out of bounds and always terminate, for any contents:
//   - packed offsets are clamped into [0, T] (begin <= end); garbage gives garbage, not a fault;
//   - a sequence (prefill) or row (decode) whose history slot / slot is outside [0, P) (while it
//     needs its ring; slot -1 is the padding row of decode), whose history_len / position is
//     negative or absurd (> 2^62) is skipped: its output rows are set to 0, no ring is touched;
//   - the keys read from a ring are limited to the last W positions before the call (W - 1 in
//     decode, whose own slot p % W is being written), which changes nothing for valid arguments
//     (the primitive requires the ring to hold the window) and bounds every loop by W + T;
//   - swska_ring_store skips sequences whose slot is outside [0, P) or whose start position is
//     negative (the CPU backends refuse them with bad_argument).
// Rows (decode) or sequences (ring store) sharing a slot are a caller error (a data race here;
// the CPU backends refuse them in decode).
//
// Kernel design (one kernel template serves prefill and decode; a tensor-core version is a later
// issue). Work item = (batch row, tile of BQ query tokens, key head hk, chunk of query heads
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
// swska_policy::decode_target_ctas, splits the window over `splits` CTAs that write partial
// (max, sum, acc) to the workspace; a second kernel combines them (one warp per (row, head)).
// The CTA of head chunk 0 / split 0 of each row also copies the new k, v into the ring slot
// p % W, which no reader of that row touches (its own key p is read from k, and only the W - 1
// earlier positions come from the ring).
// swska_ring_store: one grid-stride loop over (sequence, last min(W, T) tokens, head, d).
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
/// warps x 1 row. Decode splits the window when fewer than decode_target_ctas CTAs (2 per SM of an
/// H100 / H200) would run, into pieces of at least decode_min_split_keys keys.
/// ptxas (CUDA 13, sm_90 and sm_80): the prefill tiles take about 170 to 240 registers (one CTA
/// of 8 warps per SM), the decode tiles 80 to 180; no spills except the f16 / bf16 decode at
/// MaxD 256 (and f16 at 64), capped at 128 (80) registers with 70 to 180 bytes of stack: occupancy
/// and register use are the first things the tuned version should address.
template <int Sm> struct swska_policy {
  static constexpr int key_tile = 32; // keys per tile: one per lane (fixed by the kernel)
  static constexpr int prefill_warps_small = 8, prefill_rows_small = 8; // MaxD 64, 128
  static constexpr int prefill_warps_large = 4, prefill_rows_large = 4; // MaxD 256
  static constexpr int decode_warps = 8;
  static constexpr index_t decode_target_ctas = 264;
  static constexpr index_t decode_min_split_keys = 128;
  static constexpr index_t decode_max_splits = 64;
  static constexpr int ring_store_threads = 256;
  static constexpr int combine_warps = 4;
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
  index_t G = 1;             // query heads per key head, Hq / Hk
  int GW = 1;                // query heads per CTA
  int QW = 1;                // query groups (of RW tokens) per CTA
  index_t HC = 1;            // head chunks: ceil(G / GW)
  index_t tiles = 1;         // token tiles per batch row: ceil(T / (QW * RW))
  int splits = 1;            // decode: pieces of the key range (> 1: partials to part_*)
  float* part_acc = nullptr; // (B * Hq * splits, D)
  float* part_ml = nullptr;  // (B * Hq * splits, 2): running max, sum
};

/// Tile shape of the attention kernel for head-dim bucket MaxD, NW warps of RW rows.
template <int MaxD, int NW, int RW> struct swska_tile {
  static constexpr int key_tile = 32;
  static constexpr int threads = NW * 32;
  static constexpr int rows = NW * RW;
  static constexpr int chunks = MaxD / 32; // accumulator values per lane and row
  static_assert(MaxD % 32 == 0 && MaxD <= 256, "MaxD: 32..256 in steps of 32");
  static_assert(NW >= 1 && NW <= 32 && RW >= 1, "tile shape");
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

template <int MaxD, int NW, int RW, class Act>
__global__ void __launch_bounds__(NW * 32) swska_attend_kernel(const swska_cuda_problem<Act> pr) {
  using tile = swska_tile<MaxD, NW, RW>;
  constexpr int BK = tile::key_tile, NC = tile::chunks, NT = tile::threads;
  constexpr unsigned full = 0xffffffffu;
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
      const index_t hist = skip ? 0 : hist_raw;
      // History keys come from the last `keep` positions before the call only.
      const index_t keep = pr.decode ? W - 1 : has_ring ? W : 0;
      auto first_key = [&](index_t p) {
        index_t f = wl < 0 ? 0 : p - wl;
        if (f < 0) f = 0;
        return f < hist - keep ? hist - keep : f;
      };

      if (skip) { // padding row / bad slot or length: output 0, nothing else touched
        if (head_on)
          for (int i = 0; i < RW; ++i) {
            const index_t t = tq0 + i;
            if (t < s0 || t >= s1) continue;
            if (pr.splits > 1) {
              const index_t part = (t * Hq + h) * pr.splits + split;
              if (lane == 0) {
                pr.part_ml[2 * part] = ninf;
                pr.part_ml[2 * part + 1] = 0.0f;
              }
            } else {
              for (index_t d = lane; d < D; d += 32)
                pr.o(bq, t, h, d) = store_as<Act>(0.0f);
            }
          }
        continue;
      }

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
      if (pr.splits > 1) {
        const index_t len = hi - lo + 1, per = (len + pr.splits - 1) / pr.splits;
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

        // 4. acc += p_j v_j over the keys that weigh for some row, 4 value rows at a time.
        const unsigned kmask = __ballot_sync(full, any);
#pragma unroll 1
        for (int j0 = 0; j0 < BK; j0 += 4) {
          if (((kmask >> j0) & 0xfu) == 0) continue; // warp-uniform
          float vv[4][NC];
#pragma unroll
          for (int jj = 0; jj < 4; ++jj) {
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
          for (int jj = 0; jj < 4; ++jj)
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

/// Decode with a split window: o[b, h] = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s over the
/// splits with l_s > 0 (M their largest max); rows with none (skipped rows) get 0. One warp per
/// (row, head).
template <int Warps, class Act>
__global__ void __launch_bounds__(Warps * 32)
    swska_combine_kernel(const tensor_view<Act, 3> o, const float* part_acc, const float* part_ml,
                         const int splits) {
  const index_t Hq = o.shape[1], D = o.shape[2], rows = o.shape[0] * Hq;
  const int lane = int(threadIdx.x) & 31;
  for (index_t r = index_t(blockIdx.x) * Warps + (threadIdx.x >> 5); r < rows;
       r += index_t(gridDim.x) * Warps) {
    const index_t b = r / Hq, h = r % Hq;
    const float* ml = part_ml + 2 * r * splits;
    float M = -INFINITY;
    for (int s = 0; s < splits; ++s)
      if (ml[2 * s + 1] > 0.0f) M = fmaxf(M, ml[2 * s]);
    if (M == -INFINITY) {
      for (index_t d = lane; d < D; d += 32)
        o(b, h, d) = store_as<Act>(0.0f);
      continue;
    }
    float L = 0.0f;
    for (int s = 0; s < splits; ++s)
      if (ml[2 * s + 1] > 0.0f) L += ml[2 * s + 1] * expf(ml[2 * s] - M);
    const float inv = 1.0f / L;
    for (index_t d = lane; d < D; d += 32) {
      float sum = 0.0f;
      for (int s = 0; s < splits; ++s)
        if (ml[2 * s + 1] > 0.0f)
          sum = fmaf(expf(ml[2 * s] - M), part_acc[(r * splits + s) * D + d], sum);
      o(b, h, d) = store_as<Act>(sum * inv);
    }
  }
}

/// swska_ring_store: element e of (sequence n, i-th of its last min(L, W) tokens, head of k then
/// v, d); sequences with a slot outside [0, P) or a negative start position are skipped.
template <class Act>
__global__ void swska_ring_store_kernel(const swska_ring_store_args<Act> a, const index_t N,
                                        const index_t Wt) {
  const index_t T = a.k.shape[1], Hk = a.k.shape[2], D = a.k.shape[3], Hv = a.v.shape[2];
  const index_t P = a.ring_k.shape[0], W = a.ring_k.shape[1];
  const index_t total = N * Wt * (Hk + Hv) * D;
  for (index_t e = index_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += index_t(gridDim.x) * blockDim.x) {
    const index_t d = e % D;
    index_t rest = e / D;
    const index_t head = rest % (Hk + Hv);
    rest /= (Hk + Hv);
    const index_t i = rest % Wt, n = rest / Wt;
    const index_t s = a.slot ? index_t(a.slot[n]) : n;
    if (s < 0 || s >= P) continue;
    const index_t start = a.start_position ? index_t(a.start_position[n]) : 0;
    if (start < 0 || start > kSwskaCudaMaxPosition) continue;
    index_t bq = n, begin = 0, end = T;
    if (a.cu_seqlens) {
      bq = 0;
      begin = swska_clamp(index_t(a.cu_seqlens[n]), 0, T);
      end = swska_clamp(index_t(a.cu_seqlens[n + 1]), begin, T);
    }
    const index_t len = end - begin, cnt = len < W ? len : W;
    if (i >= cnt) continue;
    const index_t t = len - cnt + i, w = (start + t) % W;
    if (head < Hk)
      a.ring_k(s, w, head, d) = a.k(bq, begin + t, head, d);
    else
      a.ring_v(s, w, head - Hk, d) = a.v(bq, begin + t, head - Hk, d);
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
status swska_attend_launch(swska_cuda_problem<Act> pr, cudaStream_t stream) noexcept {
  const index_t items = swska_layout<NW, RW>(pr);
  if (items == 0) return status::success();
  swska_attend_kernel<MaxD, NW, RW, Act><<<rows_grid(items), NW * 32, 0, stream>>>(pr);
  RODIMUS_CUDA_TRY(cudaGetLastError());
  return status::success();
}

/// The head-dim bucket switch of the prefill (D <= 256 was checked).
template <int Sm, class Act>
status swska_prefill_dispatch(const swska_cuda_problem<Act>& pr, cudaStream_t stream) noexcept {
  using pol = swska_policy<Sm>;
  constexpr int NWs = pol::prefill_warps_small, RWs = pol::prefill_rows_small;
  constexpr int NWl = pol::prefill_warps_large, RWl = pol::prefill_rows_large;
  const index_t D = pr.q.shape[3];
  if (D <= 64) return swska_attend_launch<64, NWs, RWs>(pr, stream);
  if (D <= 128) return swska_attend_launch<128, NWs, RWs>(pr, stream);
  return swska_attend_launch<256, NWl, RWl>(pr, stream);
}

template <int Sm, class Act>
status swska_decode_dispatch(const swska_cuda_problem<Act>& pr, cudaStream_t stream) noexcept {
  constexpr int NW = swska_policy<Sm>::decode_warps;
  const index_t D = pr.q.shape[3];
  if (D <= 64) return swska_attend_launch<64, NW, 1>(pr, stream);
  if (D <= 128) return swska_attend_launch<128, NW, 1>(pr, stream);
  return swska_attend_launch<256, NW, 1>(pr, stream);
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

/// SW-SKA prefill on the GPU (see the top of this file). Enqueues on `be.stream`.
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
      pr.slot = a.history_slot;
      pr.hist_len = a.history_len;
    }
    pr.cu_seqlens = a.cu_seqlens;
    pr.num_seqs = a.cu_seqlens ? index_t(a.num_seqs) : a.q.shape[0];
    pr.mode = a.cu_seqlens ? detail::swska_seq_mode::packed : detail::swska_seq_mode::batched;
    pr.window_left = a.window_left;
    pr.scale = a.scale != 0.0f ? a.scale : float(1.0 / std::sqrt(double(D)));
    return detail::swska_prefill_dispatch<Sm>(pr, be.stream);
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
    RODIMUS_TRY(detail::swska_decode_dispatch<Sm>(pr, be.stream));
    if (S > 1) {
      constexpr int warps = swska_policy<Sm>::combine_warps;
      detail::swska_combine_kernel<warps, Act>
          <<<detail::rows_grid((B * Hq + warps - 1) / warps), warps * 32, 0, be.stream>>>(
              a.o, pr.part_acc, pr.part_ml, int(S));
      RODIMUS_CUDA_TRY(cudaGetLastError());
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
  const index_t Hv = a.v.shape[2], W = a.ring_k.shape[1];
  const index_t N = sequence_count(a.cu_seqlens, a.num_seqs, B);
  const index_t Wt = T < W ? T : W;
  const index_t total = N * Wt * (Hk + Hv) * D;
  if (total == 0) return status::success();
  constexpr int threads = swska_policy<Sm>::ring_store_threads;
  detail::swska_ring_store_kernel<Act>
      <<<detail::elements_grid(total, threads), threads, 0, be.stream>>>(a, N, Wt);
  RODIMUS_CUDA_TRY(cudaGetLastError());
  return status::success();
}

} // namespace rodimus
