// One thread, weights in L2 (512 rows x K = 2048): the decode kernel's compute rate in weight bytes
// per second, blocks against the decode layout. Build: g++ -O3 -DNDEBUG -march=native -Iinclude
// -isystem /usr/include/eigen3 bench/results/2026-12-07-cpu-quant-pack/kernel_in_cache.cpp
// -lpthread
#include "rodimus/backend/cpu/linear.hpp"
#include "rodimus/backend/cpu/quant_linear.hpp"
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
using namespace rodimus;
using A = xsimd::avx512bw;
template <class Block> double run(index_t N, index_t K, quant_layout layout, index_t M) {
  const index_t nb = quant_blocks(K);
  std::vector<Block> w(std::size_t(N * nb));
  std::mt19937 g(1);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> r(K);
  for (index_t n = 0; n < N; ++n) {
    for (auto& v : r)
      v = u(g);
    (void)quantise_row(r.data(), K, w.data() + n * nb);
    pack_quant_row(w.data() + n * nb, nb, layout);
  }
  std::vector<float> x(std::size_t(M * K), 0.3f), y(std::size_t(M * N));
  cpu<A> be{};
  quant_linear_args<float, Block> a{make_view<const float>(x.data(), M, K),
                                    make_view<const Block>(w.data(), N, nb),
                                    make_view(y.data(), M, N), layout};
  double best = 1e9;
  for (int rep = 0; rep < 7; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    for (int it = 0; it < 200; ++it)
      (void)quant_linear(be, a);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 200;
    best = std::min(best, s);
  }
  return double(w.size() * sizeof(Block)) / best / 1e9;
}
int main() {
  for (index_t M : {1, 4}) {
    std::printf("M=%ld q4 blocks %.1f GB/s  groups %.1f GB/s\n", (long)M,
                run<q4_0_block>(512, 2048, quant_layout::blocks, M),
                run<q4_0_block>(512, 2048, quant_layout::groups16, M));
    std::printf("M=%ld q8 blocks %.1f GB/s  groups %.1f GB/s\n", (long)M,
                run<q8_0_block>(512, 2048, quant_layout::blocks, M),
                run<q8_0_block>(512, 2048, quant_layout::groups16, M));
  }
}
