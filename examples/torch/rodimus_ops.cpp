// torch.ops.rodimus.*: the operator schemas, the CPU kernels (the library's cpu<> backend) and the
// Meta kernels (output shapes without data, for torch.compile and fake tensors). The argument
// adaptation is in rodimus_ops.hpp; the CUDA kernels are registered by rodimus_ops_cuda.cu when
// the extension is built with CUDA.
#include "rodimus_ops.hpp"

#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstddef>
#include <mutex>
#include <vector>

#include <rodimus/backend/cpu/causal_conv.hpp>
#include <rodimus/backend/cpu/ddts.hpp>
#include <rodimus/backend/cpu/gated_rmsnorm.hpp>
#include <rodimus/backend/cpu/gla.hpp>
#include <rodimus/backend/cpu/swska.hpp>
#include <rodimus/backend/cpu/thread_pool.hpp>

namespace rodimus_torch {
namespace {

/// The CPU device: one thread pool of torch's intra-op thread count and a workspace that grows to
/// the largest request and is kept (so a call allocates only its outputs once warm). The pool
/// serves one call at a time, hence the lock.
struct cpu_device {
  static constexpr bool host_index = true;
  std::unique_lock<std::mutex> lock;

  cpu_device() : lock(mutex()) {}
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static rodimus::thread_pool& pool() {
    static rodimus::thread_pool p(at::get_num_threads());
    return p;
  }
  rodimus::cpu<> backend() const { return rodimus::cpu<>{&pool()}; }
  rodimus::workspace workspace(std::size_t bytes) const {
    static std::vector<unsigned char> buffer;
    if (buffer.size() < bytes) buffer.resize(bytes);
    return rodimus::workspace{buffer.data(), buffer.size()};
  }
  void zero_fresh_slots(at::Tensor& pool_rows, const at::Tensor& slots,
                        const at::Tensor& has_initial_state) const {
    const std::int32_t* s = slots.data_ptr<std::int32_t>();
    const bool* has = has_initial_state.data_ptr<bool>();
    for (std::int64_t n = 0; n < slots.size(0); ++n)
      if (!has[n] && s[n] >= 0 && s[n] < pool_rows.size(0)) pool_rows.select(0, s[n]).zero_();
  }
};

std::tuple<at::Tensor, at::Tensor>
chunk_gla_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& g,
              double scale, const c10::optional<at::Tensor>& initial_state, bool output_final_state,
              const c10::optional<at::Tensor>& cu_seqlens, int64_t chunk_size) {
  cpu_device dev;
  return gla_forward(dev, "chunk_gla", q, k, v, g, scale, initial_state, output_final_state,
                     cu_seqlens, chunk_size);
}

std::tuple<at::Tensor, at::Tensor>
fused_recurrent_gla_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        const at::Tensor& g, double scale,
                        const c10::optional<at::Tensor>& initial_state, bool output_final_state,
                        const c10::optional<at::Tensor>& cu_seqlens) {
  cpu_device dev;
  return gla_forward(dev, "fused_recurrent_gla", q, k, v, g, scale, initial_state,
                     output_final_state, cu_seqlens, 0);
}

at::Tensor chunk_gla_pooled_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const at::Tensor& g, double scale, at::Tensor& state_pool,
                                const at::Tensor& slots,
                                const c10::optional<at::Tensor>& has_initial_state,
                                const at::Tensor& cu_seqlens, int64_t chunk_size) {
  cpu_device dev;
  return gla_prefill_pooled(dev, q, k, v, g, scale, state_pool, slots, has_initial_state,
                            cu_seqlens, chunk_size);
}

at::Tensor gla_decode_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const at::Tensor& g, double scale, at::Tensor& state_pool,
                          const at::Tensor& slots) {
  cpu_device dev;
  return gla_decode_pooled(dev, q, k, v, g, scale, state_pool, slots);
}

at::Tensor causal_conv1d_fn_cpu(const at::Tensor& x, const at::Tensor& weight,
                                const c10::optional<at::Tensor>& bias, at::Tensor& conv_states,
                                const at::Tensor& query_start_loc, const at::Tensor& cache_indices,
                                const c10::optional<at::Tensor>& has_initial_state, bool silu) {
  cpu_device dev;
  return causal_conv1d_fn(dev, x, weight, bias, conv_states, query_start_loc, cache_indices,
                          has_initial_state, silu);
}

at::Tensor causal_conv1d_update_cpu(const at::Tensor& x, at::Tensor& conv_state,
                                    const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                                    bool silu, const c10::optional<at::Tensor>& cache_indices) {
  cpu_device dev;
  return causal_conv1d_update(dev, x, conv_state, weight, bias, silu, cache_indices);
}

std::tuple<at::Tensor, at::Tensor> ddts_cpu(const at::Tensor& gate_preact,
                                            const c10::optional<at::Tensor>& gate_bias,
                                            const at::Tensor& k, double normalize_eps) {
  cpu_device dev;
  return ddts_forward(dev, gate_preact, gate_bias, k, normalize_eps);
}

at::Tensor gated_rmsnorm_cpu(const at::Tensor& x, const at::Tensor& gate, const at::Tensor& weight,
                             double eps) {
  cpu_device dev;
  return gated_rmsnorm_forward(dev, x, gate, weight, eps);
}

at::Tensor swska_prefill_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             at::Tensor& ring_k, at::Tensor& ring_v, const at::Tensor& slots,
                             const at::Tensor& history_len,
                             const c10::optional<at::Tensor>& cu_seqlens, int64_t window_left,
                             double scale) {
  cpu_device dev;
  return swska_prefill_forward(dev, q, k, v, ring_k, ring_v, slots, history_len, cu_seqlens,
                               window_left, scale);
}

at::Tensor swska_decode_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            at::Tensor& ring_k, at::Tensor& ring_v, const at::Tensor& slots,
                            const at::Tensor& positions, int64_t window_left, double scale) {
  cpu_device dev;
  return swska_decode_forward(dev, q, k, v, ring_k, ring_v, slots, positions, window_left, scale);
}

// ---- Meta: the same output allocation, no computation ----

std::tuple<at::Tensor, at::Tensor>
chunk_gla_meta(const at::Tensor& q, const at::Tensor&, const at::Tensor& v, const at::Tensor&,
               double, const c10::optional<at::Tensor>&, bool output_final_state,
               const c10::optional<at::Tensor>& cu_seqlens, int64_t) {
  return gla_outputs(q, v, output_final_state, cu_seqlens);
}
std::tuple<at::Tensor, at::Tensor>
fused_recurrent_gla_meta(const at::Tensor& q, const at::Tensor&, const at::Tensor& v,
                         const at::Tensor&, double, const c10::optional<at::Tensor>&,
                         bool output_final_state, const c10::optional<at::Tensor>& cu_seqlens) {
  return gla_outputs(q, v, output_final_state, cu_seqlens);
}
at::Tensor chunk_gla_pooled_meta(const at::Tensor& q, const at::Tensor&, const at::Tensor& v,
                                 const at::Tensor&, double, at::Tensor&, const at::Tensor&,
                                 const c10::optional<at::Tensor>&, const at::Tensor&, int64_t) {
  return like_v_output(q, v);
}
at::Tensor gla_decode_meta(const at::Tensor& q, const at::Tensor&, const at::Tensor& v,
                           const at::Tensor&, double, at::Tensor&, const at::Tensor&) {
  return like_v_output(q, v);
}
at::Tensor causal_conv1d_fn_meta(const at::Tensor& x, const at::Tensor&,
                                 const c10::optional<at::Tensor>&, at::Tensor&, const at::Tensor&,
                                 const at::Tensor&, const c10::optional<at::Tensor>&, bool) {
  return conv_fn_output(x);
}
at::Tensor causal_conv1d_update_meta(const at::Tensor& x, at::Tensor&, const at::Tensor&,
                                     const c10::optional<at::Tensor>&, bool,
                                     const c10::optional<at::Tensor>&) {
  return conv_update_output(x);
}

std::tuple<at::Tensor, at::Tensor> ddts_meta(const at::Tensor& gate_preact,
                                             const c10::optional<at::Tensor>&, const at::Tensor&,
                                             double) {
  return ddts_outputs(gate_preact);
}
at::Tensor gated_rmsnorm_meta(const at::Tensor& x, const at::Tensor&, const at::Tensor&, double) {
  return at::empty(x.sizes(), x.options());
}

at::Tensor swska_prefill_meta(const at::Tensor& q, const at::Tensor&, const at::Tensor&,
                              at::Tensor&, at::Tensor&, const at::Tensor&, const at::Tensor&,
                              const c10::optional<at::Tensor>&, int64_t, double) {
  return at::empty(q.sizes(), q.options());
}
at::Tensor swska_decode_meta(const at::Tensor& q, const at::Tensor&, const at::Tensor&, at::Tensor&,
                             at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, double) {
  return at::empty(q.sizes(), q.options());
}

} // namespace
} // namespace rodimus_torch

TORCH_LIBRARY(rodimus, m) {
  m.def("chunk_gla(Tensor q, Tensor k, Tensor v, Tensor g, float scale, Tensor? initial_state, "
        "bool output_final_state, Tensor? cu_seqlens, int chunk_size=64) -> (Tensor, Tensor)");
  m.def("fused_recurrent_gla(Tensor q, Tensor k, Tensor v, Tensor g, float scale, "
        "Tensor? initial_state, bool output_final_state, Tensor? cu_seqlens) -> (Tensor, Tensor)");
  m.def("chunk_gla_pooled(Tensor q, Tensor k, Tensor v, Tensor g, float scale, "
        "Tensor(a!) state_pool, Tensor slots, Tensor? has_initial_state, Tensor cu_seqlens, "
        "int chunk_size=64) -> Tensor");
  m.def("gla_decode(Tensor q, Tensor k, Tensor v, Tensor g, float scale, Tensor(a!) state_pool, "
        "Tensor slots) -> Tensor");
  m.def("causal_conv1d_fn(Tensor x, Tensor weight, Tensor? bias, Tensor(a!) conv_states, "
        "Tensor query_start_loc, Tensor cache_indices, Tensor? has_initial_state, bool silu) -> "
        "Tensor");
  m.def("causal_conv1d_update(Tensor x, Tensor(a!) conv_state, Tensor weight, Tensor? bias, "
        "bool silu, Tensor? cache_indices) -> Tensor");
  m.def("ddts(Tensor gate_preact, Tensor? gate_bias, Tensor k, float normalize_eps=1e-12) -> "
        "(Tensor, Tensor)");
  m.def("gated_rmsnorm(Tensor x, Tensor gate, Tensor weight, float eps=1e-5) -> Tensor");
  m.def("swska_prefill(Tensor q, Tensor k, Tensor v, Tensor(a!) ring_k, Tensor(b!) ring_v, "
        "Tensor slots, Tensor history_len, Tensor? cu_seqlens, int window_left, float scale) -> "
        "Tensor");
  m.def("swska_decode(Tensor q, Tensor k, Tensor v, Tensor(a!) ring_k, Tensor(b!) ring_v, "
        "Tensor slots, Tensor positions, int window_left, float scale) -> Tensor");
}

TORCH_LIBRARY_IMPL(rodimus, CPU, m) {
  using namespace rodimus_torch;
  m.impl("chunk_gla", &chunk_gla_cpu);
  m.impl("fused_recurrent_gla", &fused_recurrent_gla_cpu);
  m.impl("chunk_gla_pooled", &chunk_gla_pooled_cpu);
  m.impl("gla_decode", &gla_decode_cpu);
  m.impl("causal_conv1d_fn", &causal_conv1d_fn_cpu);
  m.impl("causal_conv1d_update", &causal_conv1d_update_cpu);
  m.impl("ddts", &ddts_cpu);
  m.impl("gated_rmsnorm", &gated_rmsnorm_cpu);
  m.impl("swska_prefill", &swska_prefill_cpu);
  m.impl("swska_decode", &swska_decode_cpu);
}

TORCH_LIBRARY_IMPL(rodimus, Meta, m) {
  using namespace rodimus_torch;
  m.impl("chunk_gla", &chunk_gla_meta);
  m.impl("fused_recurrent_gla", &fused_recurrent_gla_meta);
  m.impl("chunk_gla_pooled", &chunk_gla_pooled_meta);
  m.impl("gla_decode", &gla_decode_meta);
  m.impl("causal_conv1d_fn", &causal_conv1d_fn_meta);
  m.impl("causal_conv1d_update", &causal_conv1d_update_meta);
  m.impl("ddts", &ddts_meta);
  m.impl("gated_rmsnorm", &gated_rmsnorm_meta);
  m.impl("swska_prefill", &swska_prefill_meta);
  m.impl("swska_decode", &swska_decode_meta);
}

// torch 1.13 has no autograd fallthrough for meta tensors (it has one for CPU and CUDA): the
// operators define no gradient, so the AutogradMeta key passes straight to the Meta kernels.
TORCH_LIBRARY_IMPL(rodimus, AutogradMeta, m) {
  for (const char* op :
       {"chunk_gla", "fused_recurrent_gla", "chunk_gla_pooled", "gla_decode", "causal_conv1d_fn",
        "causal_conv1d_update", "ddts", "gated_rmsnorm", "swska_prefill", "swska_decode"})
    m.impl(op, torch::CppFunction::makeFallthrough());
}
