// quant_linear() (q8_0 and q4_0 weights) on cpu<Arch> against the scalar reference: the shared
// body of tests/cases/quant_linear_cases.hpp (tolerance explained there), with and without the
// thread pool: decode kernels (M <= 4), the tiled prefill GEMM, strided views, bad arguments, row
// lengths K that are not a multiple of 32 (a partial last block), extreme values. Which decode
// kernel a shape takes: the int8 one while x's rows padded to whole blocks fit its int8 copy. The
// same body on the scalar backend compares its decode-layout results with its own on the blocks.
#include "test_cpu_support.hpp"

#include "cases/quant_linear_cases.hpp"

#include "rodimus/backend/cpu/quant_linear.hpp"

using namespace rodimus;

TEST_CASE_TEMPLATE("cpu quant_linear matches the scalar reference", Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  // The integer decode kernel (x rounded to int8) is the one these cases reach on AVX-512 and AVX2.
  std::vector<float> x(64), y(1);
  std::vector<q4_0_block> w(2);
  const quant_linear_args<float, q4_0_block> decode{make_view<const float>(x.data(), 1, 64),
                                                    make_view<const q4_0_block>(w.data(), 1, 2),
                                                    make_view(y.data(), 1, 1)};
  const bool int8 = detail::use_avx512<Arch> || detail::use_avx2<Arch>;
  CHECK(quant_linear_rounds_x(cpu<Arch>{}, decode) == int8);
  // The bound counts x padded to whole blocks: M * quant_blocks(K) * 32 <= kQuantInt8MaxX.
  const auto rounds = [](index_t M, index_t K) {
    const quant_linear_args<float, q4_0_block> a{
        tensor_view<const float, 2>::strided(nullptr, {M, K}, {K, 1}),
        tensor_view<const q4_0_block, 2>::strided(nullptr, {1, quant_blocks(K)}, {1, 1}),
        tensor_view<float, 2>::strided(nullptr, {M, 1}, {1, 1})};
    return quant_linear_rounds_x(cpu<Arch>{}, a);
  };
  CHECK(rounds(1, 17) == int8);
  CHECK(rounds(4, 2736) == int8);
  CHECK(rounds(4, 4090) == int8); // 4 x 4096 padded: at the bound
  CHECK(!rounds(3, 5450));        // 3 x 5450 = 16350 fits, 3 x 5472 padded does not
  CHECK(!rounds(4, 4100));
  CHECK(!rounds(1, 16390));
  for (bool pool : {false, true}) {
    CAPTURE(pool);
    test::check_quant_linear_all(cpu<Arch>{pool ? &test::test_pool() : nullptr});
  }
}

TEST_CASE("scalar quant_linear: the decode layout gives the blocks' results bit for bit") {
  // The shared body on the reference itself: every case in both layouts against the blocks.
  test::check_quant_linear_all(scalar{});
}

TEST_CASE("scalar quant_linear equals the stored-weight linear on the dequantised matrix") {
  // The reference against an independent path: dequantise to f32, then linear()'s reference.
  for (const index_t K : {96, 100}) { // 100: a partial last block of 4 values
    CAPTURE(K);
    auto g = test::rng(11 + std::uint64_t(K));
    const index_t M = 3, N = 5, nb = quant_blocks(K);
    const auto x = test::uniform<float>(g, std::size_t(M * K));
    const auto w = test::random_quant_rows<q4_0_block>(g, N, K, nb);
    std::vector<float> wf(std::size_t(N * K)), y(std::size_t(M * N)), y_ref(y.size());
    for (index_t n = 0; n < N; ++n)
      REQUIRE(dequantise_row(w.data() + n * nb, K, wf.data() + n * K).ok());
    test::poison(y);
    REQUIRE(quant_linear(
                scalar{},
                quant_linear_args<float, q4_0_block>{make_view<const float>(x.data(), M, K),
                                                     make_view<const q4_0_block>(w.data(), N, nb),
                                                     make_view(y.data(), M, N)})
                .ok());
    REQUIRE(linear(scalar{}, linear_args<float, float>{make_view<const float>(x.data(), M, K),
                                                       make_view<const float>(wf.data(), N, K),
                                                       make_view(y_ref.data(), M, N)})
                .ok());
    test::check_close(y, y_ref, 1e-6, 0.0, "y"); // both are f64 sums of the same products
  }
}
