// causal_conv and causal_conv_step on cpu<Arch> (with and without a thread pool) against the scalar
// reference: the shared body in tests/cases/causal_conv_cases.hpp (tolerances explained there),
// plus the duplicate-slot refusal, which only the host backends can check (CUDA cannot read the
// slot contents, which live in device memory; backend/cuda/causal_conv.cuh documents what it does
// instead).
#include "test_cpu_support.hpp"

#include "cases/causal_conv_cases.hpp"

#include "rodimus/backend/cpu/causal_conv.hpp"

using namespace rodimus;

namespace {

template <class Arch> cpu<Arch> backend(bool pool) {
  return cpu<Arch>{pool ? &test::test_pool() : nullptr};
}

} // namespace

TEST_CASE_TEMPLATE("cpu causal_conv and causal_conv_step match the scalar reference", Arch,
                   RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true})
    test::check_causal_conv_all(backend<Arch>(pool));
}

TEST_CASE("scalar causal_conv and causal_conv_step pass the shared cases") {
  test::check_causal_conv_all(scalar{});
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
  a.slot = slots.data();
  a.initial_state = make_view<const float>(state.data(), P, C, W);
  a.final_state = make_view(state.data(), P, C, W);
  a.y = make_view(y.data(), 1, T, C);
  for (bool pool : {false, true}) {
    const status s = causal_conv(backend<Arch>(pool), a);
    CHECK(s.code == status_code::bad_argument);
    CHECK(std::string(s.what) == "slot");
    CHECK(state == state_before);
  }
  CHECK(causal_conv(scalar{}, a).code == status_code::bad_argument);
}
