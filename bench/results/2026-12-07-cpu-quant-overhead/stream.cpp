// One thread (no pool): the q4_0 / q8_0 decode-layout GEMV (quant_linear, rows in
// quant_layout::groups16) and linear()'s bf16 GEMV at batch 1, the weights streamed from memory
// (copies filling 256 MiB, one per call), best of 5 passes, in weight bytes per second.
// Build from the repository root:
//   g++ -O3 -DNDEBUG -march=native -Iinclude -isystem /usr/include/eigen3 \
//     bench/results/2026-12-07-cpu-quant-overhead/stream.cpp -o /tmp/stream -lpthread
#include "rodimus/backend/cpu/linear.hpp"
#include "rodimus/backend/cpu/quant_linear.hpp"
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>
using namespace rodimus;
using A = xsimd::avx512bw;
template <class Block> double run(index_t N, index_t K, index_t M) {
  const index_t nb = quant_blocks(K);
  std::vector<Block> one(std::size_t(N * nb));
  std::mt19937 g(1);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> r(K);
  for (index_t n = 0; n < N; ++n) {
    for (auto& v : r)
      v = u(g);
    (void)quantise_row(r.data(), K, one.data() + n * nb);
    pack_quant_row(one.data() + n * nb, nb, quant_layout::groups16);
  }
  const std::size_t bytes = one.size() * sizeof(Block);
  const int copies = int(std::max<std::size_t>(2, (256u << 20) / bytes));
  std::vector<Block> w(one.size() * copies);
  for (int c = 0; c < copies; ++c)
    std::memcpy(w.data() + c * one.size(), one.data(), bytes);
  std::vector<float> x(std::size_t(M * K), 0.3f), y(std::size_t(M * N));
  cpu<A> be{};
  double best = 1e9;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    for (int it = 0; it < copies; ++it) {
      quant_linear_args<float, Block> a{make_view<const float>(x.data(), M, K),
                                        make_view<const Block>(w.data() + it * one.size(), N, nb),
                                        make_view(y.data(), M, N), quant_layout::groups16};
      (void)quant_linear(be, a);
    }
    double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / copies;
    best = std::min(best, s);
  }
  return double(bytes) / best / 1e9;
}
double run_bf16(index_t N, index_t K) {
  const std::size_t n1 = std::size_t(N * K);
  const int copies = int(std::max<std::size_t>(2, (256u << 20) / (n1 * 2)));
  std::vector<bf16> w(n1 * copies, bf16(0.01f));
  std::vector<float> x(std::size_t(K), 0.3f);
  std::vector<float> y(static_cast<std::size_t>(N));
  cpu<A> be{};
  double best = 1e9;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    for (int it = 0; it < copies; ++it) {
      linear_args<float, bf16> a{make_view<const float>(x.data(), 1, K),
                                 make_view<const bf16>(w.data() + it * n1, N, K),
                                 make_view(y.data(), 1, N), true};
      (void)linear(be, a);
    }
    double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / copies;
    best = std::min(best, s);
  }
  return double(n1 * 2) / best / 1e9;
}
int main() {
  std::printf("1 thread streamed GB/s: q4 8192x2048 %.1f  2048x4096 %.1f | q8 8192x2048 %.1f | "
              "bf16 8192x2048 %.1f\n",
              run<q4_0_block>(8192, 2048, 1), run<q4_0_block>(2048, 4096, 1),
              run<q8_0_block>(8192, 2048, 1), run_bf16(8192, 2048));
}
