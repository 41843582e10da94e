// The PyTorch operators torch.ops.rodimus.* (issue 11): argument adaptation shared by the CPU
// (rodimus_ops.cpp) and CUDA (rodimus_ops_cuda.cu) registrations. Every operator is a thin layer
// over one public entry point of include/rodimus: it checks devices and dtypes, allocates the
// outputs, builds tensor_views over the torch storage (strides only, never a copy: the library
// takes any strides) and turns a failed rodimus::status into a torch error naming the argument.
//
// Layouts (fla, vLLM and flash-attn conventions, mapped onto the library's by strides):
//   chunk_gla, fused_recurrent_gla  q, k, g (B, T, H, K), v and o (B, T, H, V): the library's
//                                   (B, H, T, K) is the same memory with dims 1 and 2 swapped.
//                                   States (N, H, K, V) f32.
//   chunk_gla_pooled, gla_decode    the same rows (B = 1, packed) / (B, H, K); pool (P, H, K, V).
//   causal_conv1d_fn                x (C, T) as vLLM (the transpose of the library's (1, T, C));
//                                   y has x's shape with the channel axis contiguous.
//   causal_conv1d_update            x (B, C); y (B, C).
//   conv states                     (P, C, W): the library keeps the last W inputs including the
//                                   current token (vLLM keeps W - 1).
//   ddts, gated_rmsnorm             rows (M, *): no state, so no slots.
//   swska_prefill, swska_decode     q (B, T, Hq, D) / (B, Hq, D), flash-attn's varlen layout;
//                                   key/value rings (P, W, Hk, D) / (P, W, Hv, D) by slot.
//
// Each Device (cpu_device in rodimus_ops.cpp, cuda_device in rodimus_ops_cuda.cu) provides:
//   backend()        the library's backend tag (cpu<> or cuda<90> on the current stream)
//   workspace(bytes) scratch memory: a buffer kept between calls on the CPU; on CUDA a tensor
//                    from torch's caching allocator (only swska_decode's split window needs one),
//                    stream-ordered and valid inside a graph capture
//   zero_fresh_slots(pool, slots, has_initial_state)
//                    pool[slots[n]] = 0 where has_initial_state[n] is false and slots[n] >= 0:
//                    the engine form's "start from zeros", which the library reads as a zero row
//   host_index       true when index arrays are host memory (the checks can read them)
// Besides the outputs and that workspace nothing is allocated; nothing synchronises with the
// device.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <rodimus/core/dtype.hpp>
#include <rodimus/core/status.hpp>
#include <rodimus/core/tensor_view.hpp>
#include <rodimus/core/workspace.hpp>
#include <rodimus/primitives/causal_conv.hpp>
#include <rodimus/primitives/ddts.hpp>
#include <rodimus/primitives/gated_rmsnorm.hpp>
#include <rodimus/primitives/gla.hpp>
#include <rodimus/primitives/swska.hpp>

namespace rodimus_torch {

using rodimus::index_t;

/// A failed status as a torch error: "rodimus::<op>: bad shape (q)".
inline void check_status(rodimus::status s, const char* op) {
  TORCH_CHECK(s.ok(), "rodimus::", op, ": ", rodimus::to_string(s.code), " (", s.what, ")");
}

/// Calls f(T{}) with T the library's storage type of an activation dtype (f32, bf16, f16).
template <class F> void dispatch_act(at::ScalarType t, const char* op, F&& f) {
  switch (t) {
  case at::kFloat: f(float{}); return;
  case at::kBFloat16: f(rodimus::bf16{}); return;
  case at::kHalf: f(rodimus::f16{}); return;
  default: TORCH_CHECK(false, "rodimus::", op, ": unsupported dtype ", t, " (f32, bf16, f16)");
  }
}

/// A view of `t` with its dims in the order `dims` (t's dim dims[i] becomes the view's dim i).
/// T is the library's type of t's dtype (bf16 and at::BFloat16 are both 16-bit storage).
template <class T, int R>
rodimus::tensor_view<T, R> view(const at::Tensor& t, const std::array<int, R>& dims) {
  rodimus::tensor_view<T, R> v;
  v.data = static_cast<T*>(t.data_ptr());
  for (int d = 0; d < R; ++d) {
    v.shape[d] = t.size(dims[d]);
    v.stride[d] = t.stride(dims[d]);
  }
  return v;
}
template <class T, int R> rodimus::tensor_view<T, R> view(const at::Tensor& t) {
  std::array<int, R> dims{};
  for (int d = 0; d < R; ++d)
    dims[d] = d;
  return view<T, R>(t, dims);
}
/// An absent optional tensor: a view with data == nullptr (the library reads it as "none").
template <class T, int R> rodimus::tensor_view<T, R> view_or_none(const at::Tensor& t) {
  return t.defined() ? view<T, R>(t) : rodimus::tensor_view<T, R>{};
}

inline void check_tensor(const at::Tensor& t, const at::Tensor& like, const char* op,
                         const char* name, int dim) {
  TORCH_CHECK(t.defined(), "rodimus::", op, ": ", name, " is required");
  TORCH_CHECK(t.device() == like.device(), "rodimus::", op, ": ", name, " is on ", t.device(),
              ", expected ", like.device());
  TORCH_CHECK(t.dim() == dim, "rodimus::", op, ": ", name, " must have ", dim, " dims, got ",
              t.dim());
}
inline void check_dtype(const at::Tensor& t, at::ScalarType want, const char* op,
                        const char* name) {
  TORCH_CHECK(t.scalar_type() == want, "rodimus::", op, ": ", name, " must be ", want, ", got ",
              t.scalar_type());
}
/// Every named tensor has like's dtype (the activations of one call share one storage type).
inline void check_same_dtype(const at::Tensor& like, const char* op,
                             std::initializer_list<std::pair<const at::Tensor*, const char*>> ts) {
  for (const auto& [t, name] : ts)
    check_dtype(*t, like.scalar_type(), op, name);
}
/// An index array (cu_seqlens, slots, has_initial_state): 1-D, contiguous, on the data's device.
inline void check_index(const at::Tensor& t, const at::Tensor& like, at::ScalarType want,
                        const char* op, const char* name) {
  check_tensor(t, like, op, name, 1);
  check_dtype(t, want, op, name);
  TORCH_CHECK(t.is_contiguous(), "rodimus::", op, ": ", name, " must be contiguous");
}
template <class T> const T* index_ptr(const at::Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr;
}

// ---- output allocation (shared with the Meta registration, so shapes agree by construction) ----

/// chunk_gla / fused_recurrent_gla: o (B, T, H, V) of q's dtype; final_state (N, H, K, V) f32, or
/// (0) when not requested (the Python wrapper hands back None).
inline std::tuple<at::Tensor, at::Tensor> gla_outputs(const at::Tensor& q, const at::Tensor& v,
                                                      bool output_final_state,
                                                      const c10::optional<at::Tensor>& cu_seqlens) {
  TORCH_CHECK(q.dim() == 4 && v.dim() == 4, "rodimus::gla: q and v must be (B, T, H, *)");
  at::Tensor o = at::empty({q.size(0), q.size(1), q.size(2), v.size(3)}, q.options());
  const int64_t N = cu_seqlens && cu_seqlens->defined() ? cu_seqlens->size(0) - 1 : q.size(0);
  at::Tensor final_state = output_final_state ? at::empty({N, q.size(2), q.size(3), v.size(3)},
                                                          q.options().dtype(at::kFloat))
                                              : at::empty({0}, q.options().dtype(at::kFloat));
  return {o, final_state};
}

/// The engine forms: o of v's shape and q's dtype.
inline at::Tensor like_v_output(const at::Tensor& q, const at::Tensor& v) {
  return at::empty(v.sizes(), q.options());
}

/// causal_conv1d_fn: y (C, T) with the channel axis contiguous (the library's (1, T, C) layout);
/// causal_conv1d_update: y (B, C) contiguous.
inline at::Tensor conv_fn_output(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 2, "rodimus::causal_conv1d_fn: x must be (C, T)");
  return at::empty({x.size(1), x.size(0)}, x.options()).t();
}
inline at::Tensor conv_update_output(const at::Tensor& x) {
  return at::empty(x.sizes(), x.options());
}

/// ddts: k_hat and log_decay (M, N) f32 for gate_preact (M, 2N).
inline std::tuple<at::Tensor, at::Tensor> ddts_outputs(const at::Tensor& gate_preact) {
  TORCH_CHECK(gate_preact.dim() == 2, "rodimus::ddts: gate_preact must be (M, 2N)");
  const auto opts = gate_preact.options().dtype(at::kFloat);
  return {at::empty({gate_preact.size(0), gate_preact.size(1) / 2}, opts),
          at::empty({gate_preact.size(0), gate_preact.size(1) / 2}, opts)};
}

// ---- the operators, generic over the device ----

/// fla's chunk_gla (chunked) and fused_recurrent_gla (sequential) over gla_chunked / gla_scan.
/// chunk_size == 0 selects gla_scan.
template <class Device>
std::tuple<at::Tensor, at::Tensor>
gla_forward(Device& dev, const char* op, const at::Tensor& q, const at::Tensor& k,
            const at::Tensor& v, const at::Tensor& g, double scale,
            const c10::optional<at::Tensor>& initial_state, bool output_final_state,
            const c10::optional<at::Tensor>& cu_seqlens, int64_t chunk_size) {
  check_tensor(q, q, op, "q", 4);
  check_tensor(k, q, op, "k", 4);
  check_tensor(v, q, op, "v", 4);
  check_tensor(g, q, op, "g", 4);
  check_same_dtype(q, op, {{&k, "k"}, {&v, "v"}, {&g, "g"}});
  const at::Tensor init = initial_state ? *initial_state : at::Tensor();
  if (init.defined()) {
    check_tensor(init, q, op, "initial_state", 4);
    check_dtype(init, at::kFloat, op, "initial_state");
  }
  const at::Tensor cu = cu_seqlens ? *cu_seqlens : at::Tensor();
  if (cu.defined()) check_index(cu, q, at::kLong, op, "cu_seqlens");
  at::Tensor o, final_state; // not a structured binding: lambdas capture them (C++17)
  std::tie(o, final_state) = gla_outputs(q, v, output_final_state, cu_seqlens);
  constexpr std::array<int, 4> bhtk = {0, 2, 1, 3}; // (B, T, H, K) seen as (B, H, T, K)
  dispatch_act(q.scalar_type(), op, [&](auto tag) {
    using Act = decltype(tag);
    rodimus::gla_args<Act, Act, float> a;
    a.q = view<const Act, 4>(q, bhtk);
    a.k = view<const Act, 4>(k, bhtk);
    a.v = view<const Act, 4>(v, bhtk);
    a.g = view<const Act, 4>(g, bhtk);
    a.o = view<Act, 4>(o, bhtk);
    a.initial_state = view_or_none<const float, 4>(init);
    if (output_final_state) a.final_state = view<float, 4>(final_state);
    a.scale = float(scale);
    a.cu_seqlens = index_ptr<std::int64_t>(cu);
    a.num_seqs = cu.defined() ? cu.size(0) - 1 : 0;
    const auto be = dev.backend();
    if (chunk_size == 0) {
      check_status(gla_scan(be, a, dev.workspace(gla_scan_workspace_bytes(be, a))), op);
    } else {
      const int c = int(chunk_size);
      check_status(gla_chunked(be, a, c, dev.workspace(gla_chunked_workspace_bytes(be, a, c))), op);
    }
  });
  return {o, final_state};
}

/// Packed chunked prefill into a state pool: sequence n (tokens cu_seqlens[n] .. cu_seqlens[n+1]
/// of the single batch row) continues from state_pool[slots[n]] (or from zeros where
/// has_initial_state[n] is false) and leaves its final state there; slots[n] = -1 is a padding
/// sequence (it must be empty; its pool row is untouched).
template <class Device>
at::Tensor gla_prefill_pooled(Device& dev, const at::Tensor& q, const at::Tensor& k,
                              const at::Tensor& v, const at::Tensor& g, double scale,
                              at::Tensor& state_pool, const at::Tensor& slots,
                              const c10::optional<at::Tensor>& has_initial_state,
                              const at::Tensor& cu_seqlens, int64_t chunk_size) {
  const char* op = "chunk_gla_pooled";
  check_tensor(q, q, op, "q", 4);
  check_tensor(k, q, op, "k", 4);
  check_tensor(v, q, op, "v", 4);
  check_tensor(g, q, op, "g", 4);
  check_tensor(state_pool, q, op, "state_pool", 4);
  check_dtype(state_pool, at::kFloat, op, "state_pool");
  check_index(slots, q, at::kInt, op, "slots");
  TORCH_CHECK(slots.size(0) + 1 == cu_seqlens.size(0), "rodimus::", op,
              ": slots must have one entry per sequence (cu_seqlens.size(0) - 1)");
  if (has_initial_state && has_initial_state->defined()) {
    check_index(*has_initial_state, q, at::kBool, op, "has_initial_state");
    TORCH_CHECK(has_initial_state->size(0) == slots.size(0), "rodimus::", op,
                ": has_initial_state must have one entry per sequence");
    dev.zero_fresh_slots(state_pool, slots, *has_initial_state);
  }
  check_index(cu_seqlens, q, at::kLong, op, "cu_seqlens");
  at::Tensor o = like_v_output(q, v);
  constexpr std::array<int, 4> bhtk = {0, 2, 1, 3};
  dispatch_act(q.scalar_type(), op, [&](auto tag) {
    using Act = decltype(tag);
    check_same_dtype(q, op, {{&k, "k"}, {&v, "v"}, {&g, "g"}});
    rodimus::gla_args<Act, Act, float> a;
    a.q = view<const Act, 4>(q, bhtk);
    a.k = view<const Act, 4>(k, bhtk);
    a.v = view<const Act, 4>(v, bhtk);
    a.g = view<const Act, 4>(g, bhtk);
    a.o = view<Act, 4>(o, bhtk);
    a.initial_state = view<const float, 4>(state_pool); // the pool updated in place
    a.final_state = view<float, 4>(state_pool);
    a.scale = float(scale);
    a.cu_seqlens = index_ptr<std::int64_t>(cu_seqlens);
    a.num_seqs = cu_seqlens.size(0) - 1;
    a.slot = index_ptr<std::int32_t>(slots);
    const auto be = dev.backend();
    const int c = int(chunk_size);
    check_status(gla_chunked(be, a, c, dev.workspace(gla_chunked_workspace_bytes(be, a, c))), op);
  });
  return o;
}

/// One decode token per row: row b updates state_pool[slots[b]] in place; slots[b] < 0 is a
/// padding row (o row = 0, no state touched).
template <class Device>
at::Tensor gla_decode_pooled(Device& dev, const at::Tensor& q, const at::Tensor& k,
                             const at::Tensor& v, const at::Tensor& g, double scale,
                             at::Tensor& state_pool, const at::Tensor& slots) {
  const char* op = "gla_decode";
  check_tensor(q, q, op, "q", 3);
  check_tensor(k, q, op, "k", 3);
  check_tensor(v, q, op, "v", 3);
  check_tensor(g, q, op, "g", 3);
  check_tensor(state_pool, q, op, "state_pool", 4);
  check_dtype(state_pool, at::kFloat, op, "state_pool");
  check_index(slots, q, at::kInt, op, "slots");
  at::Tensor o = like_v_output(q, v);
  dispatch_act(q.scalar_type(), op, [&](auto tag) {
    using Act = decltype(tag);
    check_same_dtype(q, op, {{&k, "k"}, {&v, "v"}, {&g, "g"}});
    rodimus::gla_decode_args<Act, Act, float> a;
    a.q = view<const Act, 3>(q);
    a.k = view<const Act, 3>(k);
    a.v = view<const Act, 3>(v);
    a.g = view<const Act, 3>(g);
    a.o = view<Act, 3>(o);
    a.state = view<float, 4>(state_pool);
    a.slot = index_ptr<std::int32_t>(slots);
    a.scale = float(scale);
    TORCH_CHECK(slots.size(0) == q.size(0), "rodimus::", op, ": slots must have B entries");
    const auto be = dev.backend();
    check_status(gla_decode(be, a, dev.workspace(gla_decode_workspace_bytes(be, a))), op);
  });
  return o;
}

/// vLLM's causal_conv1d_fn over causal_conv: packed sequences (query_start_loc, N+1 offsets into
/// x's T axis), conv states in a pool (P, C, W) addressed by cache_indices (-1 = an empty padding
/// sequence: no state read or written), has_initial_state (a fresh sequence starts from zeros).
template <class Device>
at::Tensor causal_conv1d_fn(Device& dev, const at::Tensor& x, const at::Tensor& weight,
                            const c10::optional<at::Tensor>& bias, at::Tensor& conv_states,
                            const at::Tensor& query_start_loc, const at::Tensor& cache_indices,
                            const c10::optional<at::Tensor>& has_initial_state, bool silu) {
  const char* op = "causal_conv1d_fn";
  check_tensor(x, x, op, "x", 2);
  check_tensor(weight, x, op, "weight", 2);
  check_dtype(weight, at::kFloat, op, "weight");
  const at::Tensor b = bias ? *bias : at::Tensor();
  if (b.defined()) {
    check_tensor(b, x, op, "bias", 1);
    check_dtype(b, at::kFloat, op, "bias");
  }
  check_tensor(conv_states, x, op, "conv_states", 3);
  check_dtype(conv_states, x.scalar_type(), op, "conv_states");
  check_index(query_start_loc, x, at::kLong, op, "query_start_loc");
  check_index(cache_indices, x, at::kInt, op, "cache_indices");
  TORCH_CHECK(cache_indices.size(0) + 1 == query_start_loc.size(0), "rodimus::", op,
              ": cache_indices must have one entry per sequence");
  if (has_initial_state && has_initial_state->defined()) {
    check_index(*has_initial_state, x, at::kBool, op, "has_initial_state");
    TORCH_CHECK(has_initial_state->size(0) == cache_indices.size(0), "rodimus::", op,
                ": has_initial_state must have one entry per sequence");
    dev.zero_fresh_slots(conv_states, cache_indices, *has_initial_state);
  }
  at::Tensor y = conv_fn_output(x);
  // The host backends reject slot -1 in causal_conv (CUDA skips it): there the padding sequences
  // (which must be empty) are dropped from the host copies of the offsets and slots.
  std::vector<std::int64_t> host_offsets;
  std::vector<std::int32_t> host_slots;
  const std::int64_t* offsets = index_ptr<std::int64_t>(query_start_loc);
  const std::int32_t* slot = index_ptr<std::int32_t>(cache_indices);
  std::int64_t num_seqs = cache_indices.size(0);
  if constexpr (Device::host_index) {
    host_offsets.push_back(offsets[0]);
    for (std::int64_t n = 0; n < num_seqs; ++n) {
      if (slot[n] == -1) {
        TORCH_CHECK(offsets[n + 1] == offsets[n], "rodimus::", op,
                    ": a padding sequence (cache_indices -1) must be empty");
        continue;
      }
      host_offsets.push_back(offsets[n + 1]);
      host_slots.push_back(slot[n]);
    }
    offsets = host_offsets.data();
    slot = host_slots.data();
    num_seqs = std::int64_t(host_slots.size());
  }
  dispatch_act(x.scalar_type(), op, [&](auto tag) {
    using Act = decltype(tag);
    rodimus::causal_conv_args<Act> a;
    const index_t C = x.size(0), T = x.size(1);
    a.x = rodimus::tensor_view<const Act, 3>::strided(static_cast<const Act*>(x.data_ptr()),
                                                      {1, T, C}, {0, x.stride(1), x.stride(0)});
    a.y = rodimus::tensor_view<Act, 3>::strided(static_cast<Act*>(y.data_ptr()), {1, T, C},
                                                {0, y.stride(1), y.stride(0)});
    a.weight = view<const float, 2>(weight);
    a.bias = view_or_none<const float, 1>(b);
    a.initial_state = view<const Act, 3>(conv_states); // the pool updated in place
    a.final_state = view<Act, 3>(conv_states);
    a.silu = silu;
    a.cu_seqlens = offsets;
    a.num_seqs = num_seqs;
    a.slot = slot;
    check_status(causal_conv(dev.backend(), a), op);
  });
  return y;
}

/// vLLM's causal_conv1d_update over causal_conv_step: one token per row, row b shifts
/// conv_state[cache_indices[b]] (b without indices); a negative index is a padding row (y row = 0,
/// state untouched).
template <class Device>
at::Tensor causal_conv1d_update(Device& dev, const at::Tensor& x, at::Tensor& conv_state,
                                const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                                bool silu, const c10::optional<at::Tensor>& cache_indices) {
  const char* op = "causal_conv1d_update";
  check_tensor(x, x, op, "x", 2);
  check_tensor(weight, x, op, "weight", 2);
  check_dtype(weight, at::kFloat, op, "weight");
  const at::Tensor b = bias ? *bias : at::Tensor();
  if (b.defined()) {
    check_tensor(b, x, op, "bias", 1);
    check_dtype(b, at::kFloat, op, "bias");
  }
  check_tensor(conv_state, x, op, "conv_state", 3);
  check_dtype(conv_state, x.scalar_type(), op, "conv_state");
  const at::Tensor idx = cache_indices ? *cache_indices : at::Tensor();
  if (idx.defined()) {
    check_index(idx, x, at::kInt, op, "cache_indices");
    TORCH_CHECK(idx.size(0) == x.size(0), "rodimus::", op, ": cache_indices must have B entries");
  }
  at::Tensor y = conv_update_output(x);
  dispatch_act(x.scalar_type(), op, [&](auto tag) {
    using Act = decltype(tag);
    rodimus::causal_conv_step_args<Act> a;
    a.x = view<const Act, 2>(x);
    a.y = view<Act, 2>(y);
    a.weight = view<const float, 2>(weight);
    a.bias = view_or_none<const float, 1>(b);
    a.state = view<Act, 3>(conv_state);
    a.slot = index_ptr<std::int32_t>(idx);
    a.silu = silu;
    check_status(causal_conv_step(dev.backend(), a), op);
  });
  return y;
}

/// The DDTS gate of the Rodimus mixer (primitives/ddts.hpp): (k_hat, log_decay), both f32 (M, N).
template <class Device>
std::tuple<at::Tensor, at::Tensor> ddts_forward(Device& dev, const at::Tensor& gate_preact,
                                                const c10::optional<at::Tensor>& gate_bias,
                                                const at::Tensor& k, double normalize_eps) {
  const char* op = "ddts";
  check_tensor(gate_preact, gate_preact, op, "gate_preact", 2);
  check_tensor(k, gate_preact, op, "k", 2);
  check_dtype(k, gate_preact.scalar_type(), op, "k");
  const at::Tensor b = gate_bias ? *gate_bias : at::Tensor();
  if (b.defined()) {
    check_tensor(b, gate_preact, op, "gate_bias", 1);
    check_dtype(b, at::kFloat, op, "gate_bias");
  }
  at::Tensor k_hat, log_decay;
  std::tie(k_hat, log_decay) = ddts_outputs(gate_preact);
  dispatch_act(gate_preact.scalar_type(), op, [&](auto tag) {
    using Act = decltype(tag);
    rodimus::ddts_args<Act> a;
    a.gate_preact = view<const Act, 2>(gate_preact);
    a.gate_bias = view_or_none<const float, 1>(b);
    a.k = view<const Act, 2>(k);
    a.k_hat = view<float, 2>(k_hat);
    a.log_decay = view<float, 2>(log_decay);
    a.normalize_eps = float(normalize_eps);
    check_status(ddts(dev.backend(), a), op);
  });
  return {k_hat, log_decay};
}

/// y = rmsnorm(x * silu(gate)) * weight over rows (M, E) (primitives/gated_rmsnorm.hpp: the gate
/// before the norm, as the Rodimus mixer and Mamba-2's norm_before_gate=False).
template <class Device>
at::Tensor gated_rmsnorm_forward(Device& dev, const at::Tensor& x, const at::Tensor& gate,
                                 const at::Tensor& weight, double eps) {
  const char* op = "gated_rmsnorm";
  check_tensor(x, x, op, "x", 2);
  check_tensor(gate, x, op, "gate", 2);
  check_dtype(gate, x.scalar_type(), op, "gate");
  check_tensor(weight, x, op, "weight", 1);
  check_dtype(weight, at::kFloat, op, "weight");
  at::Tensor y = at::empty(x.sizes(), x.options());
  dispatch_act(x.scalar_type(), op, [&](auto tag) {
    using Act = decltype(tag);
    rodimus::gated_rmsnorm_args<Act> a;
    a.x = view<const Act, 2>(x);
    a.gate = view<const Act, 2>(gate);
    a.weight = view<const float, 1>(weight);
    a.y = view<Act, 2>(y);
    a.eps = float(eps);
    check_status(gated_rmsnorm(dev.backend(), a), op);
  });
  return y;
}

/// SW-SKA prefill continuing from key/value rings, then the rings updated: sequence n (tokens
/// cu_seqlens[n] .. cu_seqlens[n+1], or batch row n) starts at absolute position history_len[n]
/// (0: a fresh sequence, no ring read) in ring slots[n] (-1: an empty padding sequence; nothing
/// read or written); after attending, its last W keys/values are stored into its ring.
template <class Device>
at::Tensor swska_prefill_forward(Device& dev, const at::Tensor& q, const at::Tensor& k,
                                 const at::Tensor& v, at::Tensor& ring_k, at::Tensor& ring_v,
                                 const at::Tensor& slots, const at::Tensor& history_len,
                                 const c10::optional<at::Tensor>& cu_seqlens, int64_t window_left,
                                 double scale) {
  const char* op = "swska_prefill";
  check_tensor(q, q, op, "q", 4);
  check_tensor(k, q, op, "k", 4);
  check_tensor(v, q, op, "v", 4);
  check_tensor(ring_k, q, op, "ring_k", 4);
  check_tensor(ring_v, q, op, "ring_v", 4);
  check_same_dtype(q, op, {{&k, "k"}, {&v, "v"}, {&ring_k, "ring_k"}, {&ring_v, "ring_v"}});
  check_index(slots, q, at::kInt, op, "slots");
  check_index(history_len, q, at::kLong, op, "history_len");
  const at::Tensor cu = cu_seqlens ? *cu_seqlens : at::Tensor();
  if (cu.defined()) check_index(cu, q, at::kLong, op, "cu_seqlens");
  const int64_t N = cu.defined() ? cu.size(0) - 1 : q.size(0);
  TORCH_CHECK(slots.size(0) == N && history_len.size(0) == N, "rodimus::", op,
              ": slots and history_len need one entry per sequence");
  at::Tensor o = at::empty(q.sizes(), q.options());
  dispatch_act(q.scalar_type(), op, [&](auto tag) {
    using Act = decltype(tag);
    rodimus::swska_args<Act> a;
    a.q = view<const Act, 4>(q);
    a.k = view<const Act, 4>(k);
    a.v = view<const Act, 4>(v);
    a.o = view<Act, 4>(o);
    a.window_left = int(window_left);
    a.scale = float(scale);
    a.cu_seqlens = index_ptr<std::int64_t>(cu);
    a.num_seqs = cu.defined() ? N : 0;
    a.history_k = view<const Act, 4>(ring_k);
    a.history_v = view<const Act, 4>(ring_v);
    a.slot = index_ptr<std::int32_t>(slots);
    a.history_len = index_ptr<std::int64_t>(history_len);
    const auto be = dev.backend();
    check_status(swska_prefill(be, a, dev.workspace(swska_prefill_workspace_bytes(be, a))), op);
    rodimus::swska_ring_store_args<Act> r; // after the prefill read the rings
    r.k = a.k;
    r.v = a.v;
    r.ring_k = view<Act, 4>(ring_k);
    r.ring_v = view<Act, 4>(ring_v);
    r.slot = a.slot;
    r.start_position = a.history_len;
    r.cu_seqlens = a.cu_seqlens;
    r.num_seqs = a.num_seqs;
    check_status(swska_ring_store(be, r), op);
  });
  return o;
}

/// SW-SKA decode: row b's new key/value go to ring slots[b] at position positions[b] (its absolute
/// position), then it attends its window; slots[b] < 0 is a padding row (o row never written, ring
/// untouched).
template <class Device>
at::Tensor swska_decode_forward(Device& dev, const at::Tensor& q, const at::Tensor& k,
                                const at::Tensor& v, at::Tensor& ring_k, at::Tensor& ring_v,
                                const at::Tensor& slots, const at::Tensor& positions,
                                int64_t window_left, double scale) {
  const char* op = "swska_decode";
  check_tensor(q, q, op, "q", 3);
  check_tensor(k, q, op, "k", 3);
  check_tensor(v, q, op, "v", 3);
  check_tensor(ring_k, q, op, "ring_k", 4);
  check_tensor(ring_v, q, op, "ring_v", 4);
  check_same_dtype(q, op, {{&k, "k"}, {&v, "v"}, {&ring_k, "ring_k"}, {&ring_v, "ring_v"}});
  check_index(slots, q, at::kInt, op, "slots");
  check_index(positions, q, at::kLong, op, "positions");
  TORCH_CHECK(slots.size(0) == q.size(0) && positions.size(0) == q.size(0), "rodimus::", op,
              ": slots and positions need B entries");
  at::Tensor o = at::empty(q.sizes(), q.options());
  dispatch_act(q.scalar_type(), op, [&](auto tag) {
    using Act = decltype(tag);
    rodimus::swska_decode_args<Act> a;
    a.q = view<const Act, 3>(q);
    a.k = view<const Act, 3>(k);
    a.v = view<const Act, 3>(v);
    a.o = view<Act, 3>(o);
    a.ring_k = view<Act, 4>(ring_k);
    a.ring_v = view<Act, 4>(ring_v);
    a.slot = index_ptr<std::int32_t>(slots);
    a.position = index_ptr<std::int64_t>(positions);
    a.window_left = int(window_left);
    a.scale = float(scale);
    const auto be = dev.backend();
    check_status(swska_decode(be, a, dev.workspace(swska_decode_workspace_bytes(be, a))), op);
  });
  return o;
}

} // namespace rodimus_torch
