// causal_conv and causal_conv_step on CUDA: the shared body (tests/cases/causal_conv_cases.hpp)
// against the scalar reference, and what CUDA does with slot and offset contents it cannot check
// (they live in device memory; the host backends refuse them with bad_argument instead, and refuse
// two sequences writing one state, which tests/test_cpu_causal_conv.cpp covers): a prefill
// sequence or a step row whose slot is outside the pools is skipped like a padding one (slot -1,
// primitives/slots.hpp: its y rows and the pools untouched), and garbage offsets or slots never go
// out of bounds (compute-sanitizer memcheck is the judge of that part).
#include "cases/causal_conv_cases.hpp"
#include "rodimus/backend/cuda/causal_conv.cuh"
#include "support/cuda_support.hpp"

using namespace rodimus;

TEST_CASE("cuda causal_conv and causal_conv_step match the scalar reference") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  test::check_causal_conv_all(test::cuda_backend());
}

TEST_CASE("cuda causal_conv: a sequence whose slot is outside the pools is skipped") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  const auto be = test::cuda_backend();
  auto g = test::rng(91);
  const index_t T = 80, C = 37, W = 4, P = 3;
  const std::vector<std::int64_t> cu = {0, 2, 70, 80};
  // Sequence 0: slot -1; sequence 1: slot 7 (>= P); sequence 2: slot 1.
  const std::vector<std::int32_t> slots = {-1, 7, 1};
  auto x = test::uniform<float>(g, std::size_t(T * C));
  auto w = test::uniform<float>(g, std::size_t(C * W), -0.5, 0.5);
  auto pool = test::uniform<float>(g, std::size_t(P * C * W));
  std::vector<float> y(std::size_t(T * C)), y_ref(y.size());
  test::poison(y);
  test::poison(y_ref);
  test::backend_arrays<cuda<90>> mem(be);
  float* dy = mem.put(y);
  float* dpool = mem.put(pool);
  causal_conv_args<float> a;
  a.x = make_view<const float>(mem.put(x), 1, T, C);
  a.weight = make_view<const float>(mem.put(w), C, W);
  a.cu_seqlens = mem.put(cu);
  a.num_seqs = 3;
  a.slot = mem.put(slots);
  a.initial_state = make_view<const float>(dpool, P, C, W);
  a.final_state = make_view(dpool, P, C, W);
  a.y = make_view(dy, 1, T, C);
  REQUIRE(causal_conv(be, a).ok());
  auto got_pool = pool;
  mem.get(y, dy);
  mem.get(got_pool, dpool);

  // Reference: sequences 0 and 1 as padding (slot -1), which the host backends skip.
  auto ref_pool = pool;
  const std::vector<std::int32_t> ref_slots = {padding_slot, padding_slot, 1};
  a.x = make_view<const float>(x.data(), 1, T, C);
  a.weight = make_view<const float>(w.data(), C, W);
  a.cu_seqlens = cu.data();
  a.slot = ref_slots.data();
  a.initial_state = make_view<const float>(ref_pool.data(), P, C, W);
  a.final_state = make_view(ref_pool.data(), P, C, W);
  a.y = make_view(y_ref.data(), 1, T, C);
  REQUIRE(causal_conv(scalar{}, a).ok());
  std::vector<bool> skip(std::size_t(T), false);
  for (std::size_t t = 0; t < 70; ++t) // the tokens of sequences 0 and 1
    skip[t] = true;
  test::check_skipped_rows(y, y_ref, std::size_t(C), skip);
  test::check_close(y, y_ref, test::conv_tol<float>(), 0.0, "y");
  test::check_close(got_pool, ref_pool, 0.0, 0.0, "pool");
}

TEST_CASE("cuda causal_conv_step: a row whose slot is >= P is skipped like a padding row") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  const auto be = test::cuda_backend();
  auto g = test::rng(92);
  const index_t B = 4, C = 300, W = 4, P = 3;
  const std::vector<std::int32_t> slots = {2, 3, -1, 0}, ref_slots = {2, -1, -1, 0};
  auto x = test::uniform<bf16>(g, std::size_t(B * C));
  auto w = test::uniform<float>(g, std::size_t(C * W), -0.5, 0.5);
  auto pool = test::uniform<bf16>(g, std::size_t(P * C * W));
  auto ref_pool = pool;
  std::vector<bf16> y(std::size_t(B * C)), y_ref(y.size());
  test::poison(y);
  test::poison(y_ref);
  test::backend_arrays<cuda<90>> mem(be);
  bf16* dy = mem.put(y);
  bf16* dpool = mem.put(pool);
  causal_conv_step_args<bf16> a;
  a.x = make_view<const bf16>(mem.put(x), B, C);
  a.weight = make_view<const float>(mem.put(w), C, W);
  a.state = make_view(dpool, P, C, W);
  a.slot = mem.put(slots);
  a.y = make_view(dy, B, C);
  REQUIRE(causal_conv_step(be, a).ok());
  mem.get(y, dy);
  mem.get(pool, dpool);
  a.x = make_view<const bf16>(x.data(), B, C);
  a.weight = make_view<const float>(w.data(), C, W);
  a.state = make_view(ref_pool.data(), P, C, W);
  a.slot = ref_slots.data();
  a.y = make_view(y_ref.data(), B, C);
  REQUIRE(causal_conv_step(scalar{}, a).ok());
  test::check_skipped_rows(y, y_ref, std::size_t(C), {false, true, true, false});
  test::check_close(y, y_ref, test::conv_tol<bf16>(), 0.0, "y");
  test::check_close(pool, ref_pool, 0.0, 0.0, "state");
}

TEST_CASE("cuda causal_conv: garbage offsets and slots stay in bounds") {
  RODIMUS_REQUIRE_CUDA_DEVICE();
  const auto be = test::cuda_backend();
  const index_t T = 100, C = 20, W = 4, P = 2;
  std::vector<float> x(std::size_t(T * C), 1.0f), w(std::size_t(C * W), 0.25f);
  std::vector<float> y(x.size()), pool(std::size_t(P * C * W), 2.0f);
  // Decreasing, negative, past T and huge offsets; slots negative, past P and valid.
  const std::vector<std::int64_t> cu = {5, -40, 70, 30, std::int64_t(1) << 40, 90};
  const std::vector<std::int32_t> slots = {1, -7, 2, 1 << 30, 0};
  test::backend_arrays<cuda<90>> mem(be);
  causal_conv_args<float> a;
  a.x = make_view<const float>(mem.put(x), 1, T, C);
  a.weight = make_view<const float>(mem.put(w), C, W);
  a.y = make_view(mem.put(y), 1, T, C);
  a.cu_seqlens = mem.put(cu);
  a.num_seqs = 5;
  a.slot = mem.put(slots);
  float* dpool = mem.put(pool);
  a.initial_state = make_view<const float>(dpool, P, C, W);
  a.final_state = make_view(dpool, P, C, W);
  for (bool silu : {true, false}) {
    a.silu = silu;
    REQUIRE(causal_conv(be, a).ok());
  }
  const float* dw = a.weight.data;
  const std::vector<float> w5(std::size_t(C * 5), 0.25f);
  a.weight = make_view<const float>(mem.put(w5), C, 5); // W = 5: taps from memory
  a.initial_state = {};
  a.final_state = {};
  REQUIRE(causal_conv(be, a).ok());
  causal_conv_step_args<float> s;
  s.x = make_view<const float>(a.x.data, 5, C);
  s.weight = make_view(dw, C, W);
  s.state = make_view(dpool, P, C, W);
  s.slot = a.slot;
  s.y = make_view(a.y.data, 5, C);
  REQUIRE(causal_conv_step(be, s).ok());
  REQUIRE(synchronize(be).ok());
}
