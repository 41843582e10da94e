// torch.ops.rodimus.*: the CUDA kernels (the library's cuda<90> backend on torch's current stream).
// Built only when the extension is built with CUDA (rodimus_torch/__init__.py). Schemas, CPU and
// Meta kernels are in rodimus_ops.cpp, the argument adaptation in rodimus_ops.hpp.
//
// Every call only enqueues work on the current stream: nothing is allocated but the outputs (and
// swska_decode's workspace, from the caching allocator) and nothing synchronises with the host
// (index arrays stay on the device; the library's CUDA kernels stay in bounds whatever they
// hold), so the operators can be captured in a CUDA graph.
#include "rodimus_ops.hpp"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cstdint>

#include <rodimus/backend/cuda/causal_conv.cuh>
#include <rodimus/backend/cuda/ddts.cuh>
#include <rodimus/backend/cuda/gated_rmsnorm.cuh>
#include <rodimus/backend/cuda/gla.cuh>
#include <rodimus/backend/cuda/swska.cuh>

namespace rodimus_torch {
namespace {

/// pool[slots[n]] = 0 (whole rows of `row_words` words) where has_initial_state[n] is false and
/// the slot is inside the pool: one grid-stride pass over (sequence, word). This is the
/// has_initial_state of the engine form (a memset of the fresh rows), not model arithmetic: the
/// library takes "start from zeros" as a zero row in the pool.
template <class Word>
__global__ void zero_fresh_slots_kernel(Word* pool, std::int64_t pool_rows, std::int64_t row_words,
                                        const std::int32_t* slots, const bool* has_initial_state,
                                        std::int64_t num_seqs) {
  const std::int64_t total = num_seqs * row_words;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t n = i / row_words;
    const std::int32_t s = slots[n];
    if (!has_initial_state[n] && s >= 0 && s < pool_rows)
      pool[s * row_words + i % row_words] = Word{};
  }
}

struct cuda_device {
  static constexpr bool host_index = false;
  cudaStream_t stream;

  rodimus::cuda<90> backend() const {
    rodimus::cuda<90> be;
    be.stream = stream;
    return be;
  }
  at::Device device;
  at::Tensor scratch; // the workspace of the current call (torch's caching allocator)

  rodimus::workspace workspace(std::size_t bytes) {
    if (bytes == 0) return {};
    scratch = at::empty({std::int64_t(bytes)}, at::TensorOptions().dtype(at::kByte).device(device));
    return rodimus::workspace{scratch.data_ptr(), bytes};
  }
  void zero_fresh_slots(at::Tensor& pool, const at::Tensor& slots,
                        const at::Tensor& has_initial_state) const {
    TORCH_CHECK(pool.is_contiguous(), "rodimus: a state pool with has_initial_state must be "
                                      "contiguous");
    const std::int64_t rows = pool.size(0), n = slots.size(0);
    if (rows == 0 || n == 0 || pool.numel() == 0) return;
    const std::int64_t row_bytes = pool.numel() / rows * std::int64_t(pool.element_size());
    const bool wide =
        row_bytes % 16 == 0 && reinterpret_cast<std::uintptr_t>(pool.data_ptr()) % 16 == 0;
    const std::int64_t words = wide ? row_bytes / 16 : row_bytes;
    const std::int64_t blocks = std::min<std::int64_t>((n * words + 255) / 256, 4096);
    if (wide)
      zero_fresh_slots_kernel<<<unsigned(blocks), 256, 0, stream>>>(
          static_cast<uint4*>(pool.data_ptr()), rows, words, slots.data_ptr<std::int32_t>(),
          has_initial_state.data_ptr<bool>(), n);
    else
      zero_fresh_slots_kernel<<<unsigned(blocks), 256, 0, stream>>>(
          static_cast<unsigned char*>(pool.data_ptr()), rows, words, slots.data_ptr<std::int32_t>(),
          has_initial_state.data_ptr<bool>(), n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

/// The guard and stream of the device `t` lives on.
struct on_device {
  c10::cuda::CUDAGuard guard;
  cuda_device dev;
  explicit on_device(const at::Tensor& t)
      : guard(t.device()), dev{at::cuda::getCurrentCUDAStream(t.device().index()).stream(),
                               t.device(),
                               {}} {}
};

std::tuple<at::Tensor, at::Tensor>
chunk_gla_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& g,
               double scale, const c10::optional<at::Tensor>& initial_state,
               bool output_final_state, const c10::optional<at::Tensor>& cu_seqlens,
               int64_t chunk_size) {
  on_device d(q);
  return gla_forward(d.dev, "chunk_gla", q, k, v, g, scale, initial_state, output_final_state,
                     cu_seqlens, chunk_size);
}

std::tuple<at::Tensor, at::Tensor>
fused_recurrent_gla_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                         const at::Tensor& g, double scale,
                         const c10::optional<at::Tensor>& initial_state, bool output_final_state,
                         const c10::optional<at::Tensor>& cu_seqlens) {
  on_device d(q);
  return gla_forward(d.dev, "fused_recurrent_gla", q, k, v, g, scale, initial_state,
                     output_final_state, cu_seqlens, 0);
}

at::Tensor chunk_gla_pooled_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& g, double scale, at::Tensor& state_pool,
                                 const at::Tensor& slots,
                                 const c10::optional<at::Tensor>& has_initial_state,
                                 const at::Tensor& cu_seqlens, int64_t chunk_size) {
  on_device d(q);
  return gla_prefill_pooled(d.dev, q, k, v, g, scale, state_pool, slots, has_initial_state,
                            cu_seqlens, chunk_size);
}

at::Tensor gla_decode_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& g, double scale, at::Tensor& state_pool,
                           const at::Tensor& slots) {
  on_device d(q);
  return gla_decode_pooled(d.dev, q, k, v, g, scale, state_pool, slots);
}

at::Tensor causal_conv1d_fn_cuda(const at::Tensor& x, const at::Tensor& weight,
                                 const c10::optional<at::Tensor>& bias, at::Tensor& conv_states,
                                 const at::Tensor& query_start_loc, const at::Tensor& cache_indices,
                                 const c10::optional<at::Tensor>& has_initial_state, bool silu) {
  on_device d(x);
  return causal_conv1d_fn(d.dev, x, weight, bias, conv_states, query_start_loc, cache_indices,
                          has_initial_state, silu);
}

at::Tensor causal_conv1d_update_cuda(const at::Tensor& x, at::Tensor& conv_state,
                                     const at::Tensor& weight,
                                     const c10::optional<at::Tensor>& bias, bool silu,
                                     const c10::optional<at::Tensor>& cache_indices) {
  on_device d(x);
  return causal_conv1d_update(d.dev, x, conv_state, weight, bias, silu, cache_indices);
}

std::tuple<at::Tensor, at::Tensor> ddts_cuda(const at::Tensor& gate_preact,
                                             const c10::optional<at::Tensor>& gate_bias,
                                             const at::Tensor& k, double normalize_eps) {
  on_device d(gate_preact);
  return ddts_forward(d.dev, gate_preact, gate_bias, k, normalize_eps);
}

at::Tensor gated_rmsnorm_cuda(const at::Tensor& x, const at::Tensor& gate, const at::Tensor& weight,
                              double eps) {
  on_device d(x);
  return gated_rmsnorm_forward(d.dev, x, gate, weight, eps);
}

at::Tensor swska_prefill_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              at::Tensor& ring_k, at::Tensor& ring_v, const at::Tensor& slots,
                              const at::Tensor& history_len,
                              const c10::optional<at::Tensor>& cu_seqlens, int64_t window_left,
                              double scale) {
  on_device d(q);
  return swska_prefill_forward(d.dev, q, k, v, ring_k, ring_v, slots, history_len, cu_seqlens,
                               window_left, scale);
}

at::Tensor swska_decode_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             at::Tensor& ring_k, at::Tensor& ring_v, const at::Tensor& slots,
                             const at::Tensor& positions, int64_t window_left, double scale) {
  on_device d(q);
  return swska_decode_forward(d.dev, q, k, v, ring_k, ring_v, slots, positions, window_left, scale);
}

} // namespace
} // namespace rodimus_torch

TORCH_LIBRARY_IMPL(rodimus, CUDA, m) {
  using namespace rodimus_torch;
  m.impl("chunk_gla", &chunk_gla_cuda);
  m.impl("fused_recurrent_gla", &fused_recurrent_gla_cuda);
  m.impl("chunk_gla_pooled", &chunk_gla_pooled_cuda);
  m.impl("gla_decode", &gla_decode_cuda);
  m.impl("causal_conv1d_fn", &causal_conv1d_fn_cuda);
  m.impl("causal_conv1d_update", &causal_conv1d_update_cuda);
  m.impl("ddts", &ddts_cuda);
  m.impl("gated_rmsnorm", &gated_rmsnorm_cuda);
  m.impl("swska_prefill", &swska_prefill_cuda);
  m.impl("swska_decode", &swska_decode_cuda);
}
