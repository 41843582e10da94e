// causal_conv (prefill) and causal_conv_step (decode) on any backend against the scalar reference
// (one body, stamped per backend: see support/backend_support.hpp): initial/final states in a
// slot-addressed pool (unused rows checked bit for bit unchanged), the in-place update
// (final_state aliasing initial_state), packed varlen batches with empty sequences, sequences
// shorter than W and boundaries inside a CUDA chunk, T = 0 (final state = initial state), with
// and without bias and SiLU, W = 1..5 (register taps and taps from memory on CUDA); the step over a
// slot pool with padding rows (-1), three steps in a row so each reads a state the backend wrote.
// Padding (slot -1, primitives/slots.hpp): prefill sequences and step rows whose y stays poisoned
// (NaN) and whose states stay bit for bit on every backend. Outputs are poisoned with NaN. Bad
// shapes give every backend the reference's status; bad contents of cu_seqlens / slots (-2, -5,
// the pool size) only on the host backends (CUDA cannot read them and skips such rows: see
// backend/cuda/causal_conv.cuh).
//
// Tolerances, relative to max|want|: y f32 1e-5 (f32 arithmetic and f32 exp against the double
// reference: a few ulp per tap); 16-bit y 2^-7 (both sides round nearly the same value, and may
// land one 16-bit step apart, up to 2^-7 of a value just above a power of two). The states are
// copies of inputs: bit for bit (tolerance 0).
#pragma once

#include <cstdint>
#include <vector>

#include "rodimus/backend/scalar/causal_conv.hpp"
#include "rodimus/core/memory.hpp"
#include "support/backend_support.hpp"
#include "support/primitive_support.hpp"

namespace rodimus::test {

template <class Act> double conv_tol() { return std::is_same_v<Act, float> ? 1e-5 : 1.0 / 128; }

/// One prefill call. cu empty: B = 2 batch rows; else a packed batch of cu.size() - 1 sequences.
/// states: initial and final state in pools of N + 2 rows, sequence n in row N + 1 - n (rows 0
/// unused); with three sequences or more, sequence N - 2 is padding (slot -1: its y rows stay
/// NaN, its pool row stays as it was). in_place: final_state aliases initial_state.
template <class Backend, class Act>
void check_causal_conv(const Backend& be, index_t T, index_t C, index_t W,
                       std::vector<std::int64_t> cu, bool states, bool in_place, bool silu = true,
                       bool with_bias = true) {
  CAPTURE(T);
  CAPTURE(C);
  CAPTURE(W);
  CAPTURE(cu.size());
  CAPTURE(states);
  CAPTURE(in_place);
  CAPTURE(silu);
  CAPTURE(with_bias);
  auto g = rng(std::uint64_t(T * 5 + C + W));
  const index_t B = cu.empty() ? 2 : 1;
  const index_t N = cu.empty() ? B : index_t(cu.size()) - 1;
  const index_t P = N + 2;
  auto x = uniform<Act>(g, std::size_t(B * T * C));
  auto w = uniform<float>(g, std::size_t(C * W), -0.5, 0.5);
  auto bias = uniform<float>(g, std::size_t(C), -0.5, 0.5);
  auto s0 = uniform<Act>(g, std::size_t(P * C * W));
  auto s0_ref = s0;
  const index_t padding = states && N >= 3 ? N - 2 : -1;
  std::vector<std::int32_t> slots;
  for (index_t n = 0; n < N; ++n)
    slots.push_back(n == padding ? padding_slot : std::int32_t(P - 1 - n));
  std::vector<Act> y(std::size_t(B * T * C)), y_ref(y.size());
  poison(y);
  poison(y_ref);
  auto sf = s0; // rows not addressed by a slot stay as they are in both
  auto sf_ref = s0;

  backend_arrays<Backend> mem(be);
  Act* dy = mem.put(y);
  Act* ds0 = mem.put(s0);
  Act* dsf = mem.put(sf);
  causal_conv_args<Act> a;
  a.x = make_view<const Act>(mem.put(x), B, T, C);
  a.weight = make_view<const float>(mem.put(w), C, W);
  if (with_bias) a.bias = make_view<const float>(mem.put(bias), C);
  a.silu = silu;
  if (!cu.empty()) {
    a.cu_seqlens = mem.put(cu);
    a.num_seqs = N;
  }
  if (states) {
    a.slot = mem.put(slots);
    a.initial_state = make_view<const Act>(ds0, P, C, W);
    a.final_state = in_place ? make_view(ds0, P, C, W) : make_view(dsf, P, C, W);
  }
  a.y = make_view(dy, B, T, C);
  REQUIRE(causal_conv(be, a).ok());
  mem.get(y, dy);
  mem.get(s0, ds0);
  mem.get(sf, dsf);

  a.x = make_view<const Act>(x.data(), B, T, C);
  a.weight = make_view<const float>(w.data(), C, W);
  if (with_bias) a.bias = make_view<const float>(bias.data(), C);
  if (!cu.empty()) a.cu_seqlens = cu.data();
  if (states) {
    a.slot = slots.data();
    a.initial_state = make_view<const Act>(s0_ref.data(), P, C, W);
    a.final_state =
        in_place ? make_view(s0_ref.data(), P, C, W) : make_view(sf_ref.data(), P, C, W);
  }
  a.y = make_view(y_ref.data(), B, T, C);
  REQUIRE(causal_conv(scalar{}, a).ok());
  std::vector<bool> skip(std::size_t(B * T), false); // token rows of the padding sequence
  if (padding >= 0)
    for (std::int64_t t = cu[std::size_t(padding)]; t < cu[std::size_t(padding) + 1]; ++t)
      skip[std::size_t(t)] = true;
  check_skipped_rows(y, y_ref, std::size_t(C), skip);
  check_close(y, y_ref, conv_tol<Act>(), 0.0, "y");
  check_close(s0, s0_ref, 0.0, 0.0, in_place ? "final_state (in place)" : "initial_state");
  check_close(sf, sf_ref, 0.0, 0.0, "final_state");
}

/// Three decode steps over a pool of B + 1 rows: row b on slot B - b, row 1 padding (-1).
template <class Backend, class Act>
void check_causal_conv_step(const Backend& be, index_t B, index_t C, index_t W = 4,
                            bool silu = true, bool with_bias = true) {
  CAPTURE(B);
  CAPTURE(C);
  CAPTURE(W);
  CAPTURE(silu);
  CAPTURE(with_bias);
  auto g = rng(std::uint64_t(B * 3 + C + 7 * W));
  const index_t P = B + 1;
  auto st = uniform<Act>(g, std::size_t(P * C * W));
  auto st_ref = st;
  auto w = uniform<float>(g, std::size_t(C * W), -0.5, 0.5);
  auto bias = uniform<float>(g, std::size_t(C), -0.5, 0.5);
  std::vector<std::int32_t> slots;
  for (index_t b = 0; b < B; ++b)
    slots.push_back(b == 1 ? -1 : std::int32_t(P - 1 - b));
  backend_arrays<Backend> mem(be);
  Act* dst = mem.put(st);
  const float* dw = mem.put(w);
  const float* dbias = mem.put(bias);
  const std::int32_t* dslots = mem.put(slots);
  for (int step = 0; step < 3; ++step) {
    CAPTURE(step);
    auto x = uniform<Act>(g, std::size_t(B * C));
    std::vector<Act> y(std::size_t(B * C)), y_ref(y.size());
    poison(y);
    poison(y_ref);
    Act* dy = mem.put(y);
    causal_conv_step_args<Act> a;
    a.x = make_view<const Act>(mem.put(x), B, C);
    a.weight = make_view(dw, C, W);
    if (with_bias) a.bias = make_view(dbias, C);
    a.silu = silu;
    a.slot = dslots;
    a.state = make_view(dst, P, C, W);
    a.y = make_view(dy, B, C);
    REQUIRE(causal_conv_step(be, a).ok());
    mem.get(y, dy);
    mem.get(st, dst);

    a.x = make_view<const Act>(x.data(), B, C);
    a.weight = make_view<const float>(w.data(), C, W);
    if (with_bias) a.bias = make_view<const float>(bias.data(), C);
    a.slot = slots.data();
    a.state = make_view(st_ref.data(), P, C, W);
    a.y = make_view(y_ref.data(), B, C);
    REQUIRE(causal_conv_step(scalar{}, a).ok());
    std::vector<bool> skip(std::size_t(B), false);
    if (B > 1) skip[1] = true;
    check_skipped_rows(y, y_ref, std::size_t(C), skip);
    check_close(y, y_ref, conv_tol<Act>(), 0.0, "y");
    check_close(st, st_ref, 0.0, 0.0, "state");
  }
}

/// Every bad shape gives the backend the same status as the reference (nothing is launched); on
/// the host backends also bad offsets and slots.
template <class Backend> void check_causal_conv_bad_arguments(const Backend& be) {
  const index_t T = 6, C = 8, W = 4, P = 3;
  std::vector<float> x(std::size_t(T * C)), w(std::size_t(C * W)),
      bias(static_cast<std::size_t>(C));
  std::vector<float> y(x.size()), s0(std::size_t(P * C * W)), sf(s0.size());
  const std::vector<std::int64_t> cu = {0, 2, 6};
  const std::vector<std::int32_t> slots = {0, 2};
  backend_arrays<Backend> mem(be);
  causal_conv_args<float> valid;
  valid.x = make_view<const float>(mem.put(x), 1, T, C);
  valid.weight = make_view<const float>(mem.put(w), C, W);
  valid.bias = make_view<const float>(mem.put(bias), C);
  valid.y = make_view(mem.put(y), 1, T, C);
  valid.initial_state = make_view<const float>(mem.put(s0), P, C, W);
  valid.final_state = make_view(mem.put(sf), P, C, W);
  valid.cu_seqlens = mem.put(cu);
  valid.num_seqs = 2;
  valid.slot = mem.put(slots);
  using A = causal_conv_args<float>;
  auto run = [&](const A& a) { return causal_conv(be, a); };
  check_bad_cases(
      valid, run,
      {{"null x", [](A& a) { a.x.data = nullptr; }, status_code::null_pointer, "x"},
       {"null y", [](A& a) { a.y.data = nullptr; }, status_code::null_pointer, "y"},
       {"y tokens", [](A& a) { a.y.shape[1] = 5; }, status_code::bad_shape, "y"},
       {"weight rows", [](A& a) { a.weight.shape[0] = 7; }, status_code::bad_shape, "weight"},
       {"zero width", [](A& a) { a.weight.shape[1] = 0; }, status_code::bad_shape, "weight"},
       {"bias size", [](A& a) { a.bias.shape[0] = 7; }, status_code::bad_shape, "bias"},
       {"initial_state width", [](A& a) { a.initial_state.shape[2] = 3; }, status_code::bad_shape,
        "initial_state"},
       {"final_state channels", [](A& a) { a.final_state.shape[1] = 7; }, status_code::bad_shape,
        "final_state"},
       {"packed with two rows",
        [](A& a) {
          a.x.shape[0] = 2;
          a.y.shape[0] = 2;
        },
        status_code::bad_shape, "cu_seqlens"},
       {"negative num_seqs", [](A& a) { a.num_seqs = -1; }, status_code::bad_shape, "num_seqs"},
       {"pool smaller than N without slots",
        [](A& a) {
          a.slot = nullptr;
          a.initial_state.shape[0] = 1;
        },
        status_code::bad_shape, "initial_state"}});
  // The step.
  const index_t B = 3;
  std::vector<float> sx(std::size_t(B * C)), sy(sx.size()), pool(std::size_t(4 * C * W));
  const std::vector<std::int32_t> sslots = {0, -1, 2};
  causal_conv_step_args<float> vstep;
  vstep.x = make_view<const float>(mem.put(sx), B, C);
  vstep.weight = valid.weight;
  vstep.bias = valid.bias;
  vstep.state = make_view(mem.put(pool), 4, C, W);
  vstep.slot = mem.put(sslots);
  vstep.y = make_view(mem.put(sy), B, C);
  using S = causal_conv_step_args<float>;
  auto run_step = [&](const S& a) { return causal_conv_step(be, a); };
  check_bad_cases(
      vstep, run_step,
      {{"null state", [](S& a) { a.state.data = nullptr; }, status_code::null_pointer, "state"},
       {"null x", [](S& a) { a.x.data = nullptr; }, status_code::null_pointer, "x"},
       {"y rows", [](S& a) { a.y.shape[0] = 2; }, status_code::bad_shape, "y"},
       {"state width", [](S& a) { a.state.shape[2] = 3; }, status_code::bad_shape, "state"},
       {"weight channels", [](S& a) { a.weight.shape[0] = 7; }, status_code::bad_shape, "weight"},
       {"no slots, pool smaller than B",
        [](S& a) {
          a.slot = nullptr;
          a.state.shape[0] = 2;
        },
        status_code::bad_shape, "slot"}});
  if constexpr (memory_traits<Backend>::host_accessible) {
    // Contents: only where the host can read the arrays (CUDA skips such rows instead).
    check_bad_cases(valid, run,
                    {{"offsets not ending at T",
                      [](A& a) {
                        static const std::int64_t bad[] = {0, 2, 5};
                        a.cu_seqlens = bad;
                      },
                      status_code::bad_argument, "cu_seqlens"},
                     {"slot = pool size",
                      [](A& a) {
                        static const std::int32_t bad[] = {0, 3};
                        a.slot = bad;
                      },
                      status_code::bad_argument, "slot"},
                     {"slot -2",
                      [](A& a) {
                        static const std::int32_t bad[] = {-2, 1};
                        a.slot = bad;
                      },
                      status_code::bad_argument, "slot"},
                     {"slot -5",
                      [](A& a) {
                        static const std::int32_t bad[] = {1, -5};
                        a.slot = bad;
                      },
                      status_code::bad_argument, "slot"},
                     {"two sequences writing one state",
                      [](A& a) {
                        static const std::int32_t bad[] = {1, 1};
                        a.slot = bad;
                      },
                      status_code::bad_argument, "slot"}});
    check_bad_cases(vstep, run_step,
                    {{"step slot = pool size",
                      [](S& a) {
                        static const std::int32_t bad[] = {0, 4, 2};
                        a.slot = bad;
                      },
                      status_code::bad_argument, "slot"},
                     {"step slot -2",
                      [](S& a) {
                        static const std::int32_t bad[] = {0, -2, 2};
                        a.slot = bad;
                      },
                      status_code::bad_argument, "slot"},
                     {"step slot -5",
                      [](S& a) {
                        static const std::int32_t bad[] = {-5, -1, 2};
                        a.slot = bad;
                      },
                      status_code::bad_argument, "slot"},
                     {"two rows on one state",
                      [](S& a) {
                        static const std::int32_t bad[] = {2, -1, 2};
                        a.slot = bad;
                      },
                      status_code::bad_argument, "slot"}});
  }
}

/// The cases every backend runs.
template <class Backend> void check_causal_conv_all(const Backend& be) {
  // Shapes of the CPU test before the split (unchanged).
  check_causal_conv<Backend, float>(be, 37, 300, 4, {}, true, false);
  check_causal_conv<Backend, float>(be, 50, 520, 4, {0, 2, 2, 9, 50}, true, true);
  check_causal_conv<Backend, float>(be, 20, 33, 3, {}, false, false);
  check_causal_conv<Backend, bf16>(be, 25, 260, 4, {0, 3, 25}, true, false);
  // Longer than one CUDA chunk (64 tokens) with boundaries inside chunks, empty sequences and
  // sequences shorter than W updated in place; no bias, no SiLU; f16; W = 1, 2, 5.
  check_causal_conv<Backend, f16>(be, 300, 129, 4, {0, 1, 1, 70, 72, 200, 300}, true, true);
  check_causal_conv<Backend, float>(be, 150, 70, 4, {0, 63, 65, 150}, true, false, false, false);
  check_causal_conv<Backend, bf16>(be, 130, 40, 5, {0, 2, 66, 130}, true, true);
  check_causal_conv<Backend, float>(be, 70, 17, 5, {}, true, false, true, false);
  check_causal_conv<Backend, float>(be, 9, 33, 2, {}, true, true, false, true);
  check_causal_conv<Backend, float>(be, 9, 33, 1, {0, 4, 9}, true, false);
  // T = 0: nothing to convolve, the final state is the initial state (empty sequences).
  check_causal_conv<Backend, float>(be, 0, 33, 4, {}, true, false);
  check_causal_conv<Backend, bf16>(be, 0, 33, 4, {0, 0, 0}, true, true);

  check_causal_conv_step<Backend, float>(be, 4, 1000);
  check_causal_conv_step<Backend, bf16>(be, 3, 77);
  // Tap counts with and without the unrolled dense path, no bias, no SiLU, many blocks.
  check_causal_conv_step<Backend, float>(be, 2, 4096 + 5, 2, false, false);
  check_causal_conv_step<Backend, float>(be, 3, 300, 3);
  check_causal_conv_step<Backend, f16>(be, 5, 2048, 4, true, false);
  check_causal_conv_step<Backend, float>(be, 3, 70, 5);
  check_causal_conv_step<Backend, bf16>(be, 2, 33, 1);

  check_causal_conv_bad_arguments(be);
}

} // namespace rodimus::test
