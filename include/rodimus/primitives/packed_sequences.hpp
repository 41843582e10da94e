// Packed variable-length batches ("cu_seqlens", as flash-attn and flash-linear-attention take
// them), shared by the primitives that accept them (swska, rotary, causal_conv).
//
//   without cu_seqlens: N = B sequences; sequence n is batch row n, tokens [0, T)
//   with cu_seqlens:    N = num_seqs; cu_seqlens holds N+1 offsets
//                       0 = cu[0] <= cu[1] <= ... <= cu[N] = T, B must be 1, and sequence n is
//                       tokens [cu[n], cu[n+1]) of batch row 0 (empty sequences are allowed)
#pragma once

#include <cstdint>

#include "rodimus/core/macros.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/tensor_view.hpp"

namespace rodimus {

/// Where sequence n lives: batch row `batch`, tokens [begin, end).
struct sequence_range {
  index_t batch = 0;
  index_t begin = 0;
  index_t end = 0;
  RODIMUS_HOST_DEVICE index_t length() const noexcept { return end - begin; }
};

/// N: num_seqs with cu_seqlens, else the batch size B.
RODIMUS_HOST_DEVICE inline index_t sequence_count(const std::int64_t* cu_seqlens,
                                                  std::int64_t num_seqs, index_t batch) noexcept {
  return cu_seqlens ? index_t(num_seqs) : batch;
}

/// The tokens of sequence n (cu_seqlens must be readable where this runs).
RODIMUS_HOST_DEVICE inline sequence_range sequence_at(const std::int64_t* cu_seqlens, index_t n,
                                                      index_t T) noexcept {
  sequence_range r;
  if (cu_seqlens) {
    r.batch = 0;
    r.begin = index_t(cu_seqlens[n]);
    r.end = index_t(cu_seqlens[n + 1]);
  } else {
    r.batch = n;
    r.begin = 0;
    r.end = T;
  }
  return r;
}

/// The checks that do not read cu_seqlens (usable when it lives in device memory):
/// with cu_seqlens, B == 1 ("cu_seqlens") and num_seqs >= 0 ("num_seqs").
inline status check_packed_shape(const std::int64_t* cu_seqlens, std::int64_t num_seqs,
                                 index_t batch) noexcept {
  if (!cu_seqlens) return status::success();
  RODIMUS_REQUIRE(num_seqs >= 0, bad_shape, "num_seqs");
  RODIMUS_REQUIRE(batch == 1, bad_shape, "cu_seqlens");
  return status::success();
}

/// The offsets themselves, read on the host: cu[0] == 0, non-decreasing, cu[N] == T.
inline status check_packed_offsets(const std::int64_t* cu_seqlens, std::int64_t num_seqs,
                                   index_t T) noexcept {
  if (!cu_seqlens) return status::success();
  RODIMUS_REQUIRE(cu_seqlens[0] == 0, bad_argument, "cu_seqlens");
  for (std::int64_t n = 0; n < num_seqs; ++n)
    RODIMUS_REQUIRE(cu_seqlens[n + 1] >= cu_seqlens[n], bad_argument, "cu_seqlens");
  RODIMUS_REQUIRE(cu_seqlens[num_seqs] == T, bad_argument, "cu_seqlens");
  return status::success();
}

} // namespace rodimus
