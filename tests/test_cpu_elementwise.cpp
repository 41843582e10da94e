// The element-wise primitives on cpu<Arch> against the scalar reference: rmsnorm, gated_rmsnorm,
// swiglu, ddts and rotary (bodies written once for every backend in
// tests/cases/<primitive>_cases.hpp, stamped here for each arch, with and without the pool),
// causal_conv (initial/final states, packed sequences, state slots, in-place state),
// causal_conv_step (slot pool with padding rows). Widths that are not multiples of the SIMD width
// cover the tails.
//
// Tolerances, relative to max|want|: f32 1e-5 (f32 against f64 or f32 std:: functions; xsimd's
// exp/log are within a few ulp). 16-bit outputs 2^-7: both sides round the same inputs, results
// may land one bf16 step apart, and one step of a value v is up to 2^-7 v (v just above a power
// of two; 2^-8 was too tight: 396 vs 398 failed against 2^-8 x 396).
#include "test_cpu_support.hpp"

#include "cases/ddts_cases.hpp"
#include "cases/gated_rmsnorm_cases.hpp"
#include "cases/rmsnorm_cases.hpp"
#include "cases/rotary_cases.hpp"
#include "cases/swiglu_cases.hpp"

#include "rodimus/backend/cpu/causal_conv.hpp"
#include "rodimus/backend/cpu/ddts.hpp"
#include "rodimus/backend/cpu/gated_rmsnorm.hpp"
#include "rodimus/backend/cpu/rmsnorm.hpp"
#include "rodimus/backend/cpu/rotary.hpp"
#include "rodimus/backend/cpu/swiglu.hpp"

using namespace rodimus;

namespace {

template <class T> double tol() { return std::is_same_v<T, float> ? 1e-5 : 1.0 / 128; }

template <class Arch> cpu<Arch> backend(bool pool) {
  return cpu<Arch>{pool ? &test::test_pool() : nullptr};
}

template <class Arch, class Act>
void check_conv(index_t T, index_t C, index_t W, std::vector<std::int64_t> cu, bool states,
                bool in_place, bool pool) {
  CAPTURE(T);
  CAPTURE(C);
  CAPTURE(W);
  CAPTURE(cu.size());
  CAPTURE(in_place);
  auto g = test::rng(std::uint64_t(T * 5 + C + W));
  const index_t B = cu.empty() ? 2 : 1;
  const index_t N = cu.empty() ? B : index_t(cu.size()) - 1;
  const index_t P = N + 2;
  auto x = test::uniform<Act>(g, std::size_t(B * T * C));
  auto w = test::uniform<float>(g, std::size_t(C * W), -0.5, 0.5);
  auto bias = test::uniform<float>(g, std::size_t(C), -0.5, 0.5);
  auto s0 = test::uniform<Act>(g, std::size_t(P * C * W));
  auto s0_ref = s0;
  std::vector<std::int32_t> slots;
  for (index_t n = 0; n < N; ++n)
    slots.push_back(std::int32_t(P - 1 - n));
  std::vector<Act> y(std::size_t(B * T * C)), y_ref(y.size()), sf(s0.size()), sf_ref(s0.size());
  test::poison(y);
  test::poison(y_ref);
  sf = s0; // rows not addressed by a slot stay as they are in both
  sf_ref = s0;
  causal_conv_args<Act> a;
  a.x = make_view<const Act>(x.data(), B, T, C);
  a.weight = make_view<const float>(w.data(), C, W);
  a.bias = make_view<const float>(bias.data(), C);
  if (!cu.empty()) {
    a.cu_seqlens = cu.data();
    a.num_seqs = N;
  }
  if (states) {
    a.state_slot = slots.data();
    a.initial_state = make_view<const Act>(s0.data(), P, C, W);
    a.final_state = in_place ? make_view(s0.data(), P, C, W) : make_view(sf.data(), P, C, W);
  }
  a.y = make_view(y.data(), B, T, C);
  REQUIRE(causal_conv(backend<Arch>(pool), a).ok());
  if (states) {
    a.initial_state = make_view<const Act>(s0_ref.data(), P, C, W);
    a.final_state =
        in_place ? make_view(s0_ref.data(), P, C, W) : make_view(sf_ref.data(), P, C, W);
  }
  a.y = make_view(y_ref.data(), B, T, C);
  REQUIRE(causal_conv(scalar{}, a).ok());
  test::check_close(y, y_ref, tol<Act>(), 0.0, "y");
  if (states)
    test::check_close(in_place ? s0 : sf, in_place ? s0_ref : sf_ref, 0.0, 0.0, "final_state");
}

template <class Arch, class Act>
void check_conv_step(index_t B, index_t C, bool pool, index_t W = 4, bool silu = true,
                     bool with_bias = true) {
  CAPTURE(B);
  CAPTURE(C);
  CAPTURE(W);
  CAPTURE(silu);
  auto g = test::rng(std::uint64_t(B * 3 + C + 7 * W));
  const index_t P = B + 1;
  auto st = test::uniform<Act>(g, std::size_t(P * C * W));
  auto st_ref = st;
  auto w = test::uniform<float>(g, std::size_t(C * W), -0.5, 0.5);
  auto bias = test::uniform<float>(g, std::size_t(C), -0.5, 0.5);
  std::vector<std::int32_t> slots;
  for (index_t b = 0; b < B; ++b)
    slots.push_back(b == 1 ? -1 : std::int32_t(P - 1 - b));
  for (int step = 0; step < 3; ++step) {
    auto x = test::uniform<Act>(g, std::size_t(B * C));
    std::vector<Act> y(std::size_t(B * C)), y_ref(y.size());
    test::poison(y);
    test::poison(y_ref);
    causal_conv_step_args<Act> a;
    a.x = make_view<const Act>(x.data(), B, C);
    a.weight = make_view<const float>(w.data(), C, W);
    if (with_bias) a.bias = make_view<const float>(bias.data(), C);
    a.silu = silu;
    a.slot = slots.data();
    a.state = make_view(st.data(), P, C, W);
    a.y = make_view(y.data(), B, C);
    REQUIRE(causal_conv_step(backend<Arch>(pool), a).ok());
    a.state = make_view(st_ref.data(), P, C, W);
    a.y = make_view(y_ref.data(), B, C);
    REQUIRE(causal_conv_step(scalar{}, a).ok());
    test::check_close(y, y_ref, tol<Act>(), 0.0, "y");
    test::check_close(st, st_ref, 0.0, 0.0, "state");
  }
}

} // namespace

TEST_CASE_TEMPLATE("cpu rmsnorm, gated_rmsnorm and swiglu match the scalar reference", Arch,
                   RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    test::check_rmsnorm_all(backend<Arch>(pool));
    test::check_gated_rmsnorm_all(backend<Arch>(pool));
    test::check_swiglu_all(backend<Arch>(pool));
  }
}

TEST_CASE_TEMPLATE("cpu causal_conv and causal_conv_step match the scalar reference", Arch,
                   RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    check_conv<Arch, float>(37, 300, 4, {}, true, false, pool);
    check_conv<Arch, float>(50, 520, 4, {0, 2, 2, 9, 50}, true, true, pool);
    check_conv<Arch, float>(20, 33, 3, {}, false, false, pool);
    check_conv<Arch, bf16>(25, 260, 4, {0, 3, 25}, true, false, pool);
    check_conv_step<Arch, float>(4, 1000, pool);
    check_conv_step<Arch, bf16>(3, 77, pool);
    // Tap counts with and without the unrolled dense path, no bias, no SiLU, many blocks.
    check_conv_step<Arch, float>(2, 4096 + 5, pool, 2, false, false);
    check_conv_step<Arch, float>(3, 300, pool, 3);
    check_conv_step<Arch, f16>(5, 2048, pool, 4, true, false);
  }
}

TEST_CASE_TEMPLATE("cpu causal_conv refuses two sequences writing one state, like the reference",
                   Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  auto g = test::rng(77);
  const index_t T = 6, C = 40, W = 4, P = 3;
  const std::vector<std::int64_t> cu = {0, 2, 6};
  const std::vector<std::int32_t> slots = {1, 1};
  auto x = test::uniform<float>(g, std::size_t(T * C));
  auto w = test::uniform<float>(g, std::size_t(C * W), -0.5, 0.5);
  auto state = test::uniform<float>(g, std::size_t(P * C * W));
  const auto state_before = state;
  std::vector<float> y(std::size_t(T * C));
  causal_conv_args<float> a;
  a.x = make_view<const float>(x.data(), 1, T, C);
  a.weight = make_view<const float>(w.data(), C, W);
  a.cu_seqlens = cu.data();
  a.num_seqs = 2;
  a.state_slot = slots.data();
  a.initial_state = make_view<const float>(state.data(), P, C, W);
  a.final_state = make_view(state.data(), P, C, W);
  a.y = make_view(y.data(), 1, T, C);
  for (bool pool : {false, true}) {
    const status s = causal_conv(backend<Arch>(pool), a);
    CHECK(s.code == status_code::bad_argument);
    CHECK(std::string(s.what) == "state_slot");
    CHECK(state == state_before);
  }
  CHECK(causal_conv(scalar{}, a).code == status_code::bad_argument);
}

TEST_CASE_TEMPLATE("cpu ddts and rotary match the scalar reference", Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    test::check_ddts_all(backend<Arch>(pool));
    test::check_rotary_all(backend<Arch>(pool));
  }
}
