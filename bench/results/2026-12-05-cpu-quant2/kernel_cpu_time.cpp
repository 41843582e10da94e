// Single-thread kernel microbenchmark (thread CPU time): old f32-widening decode kernel vs the int8
// kernel vs bf16 linear, weights streamed (rotating copies over 256 MiB) or cache-resident.
#include "rodimus/backend/cpu/linear.hpp"
#include "rodimus/backend/cpu/quant_linear.hpp"
#include <cstdio>
#include <cstring>
#include <random>
#include <time.h>
#include <vector>
using namespace rodimus;
using A = xsimd::fma3<xsimd::avx2>;
static double tcpu() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}
template <class Block>
double run(int kind, index_t N, index_t K, std::size_t arena_bytes, int reps) {
  const std::size_t row = std::is_same_v<Block, bf16> ? K * 2 : K / 32 * sizeof(Block);
  const std::size_t bytes = row * N, copies = std::max<std::size_t>(1, arena_bytes / bytes);
  std::vector<unsigned char> arena(bytes * copies);
  std::mt19937 g(1);
  std::uniform_real_distribution<float> u(-0.05f, 0.05f);
  std::vector<float> r(K);
  for (index_t n = 0; n < N; ++n) {
    for (auto& v : r)
      v = u(g);
    if constexpr (std::is_same_v<Block, bf16>)
      for (index_t k = 0; k < K; ++k)
        reinterpret_cast<bf16*>(arena.data() + n * row)[k] = bf16(r[k]);
    else
      (void)quantise_row(r.data(), K, reinterpret_cast<Block*>(arena.data() + n * row));
  }
  for (std::size_t c = 1; c < copies; ++c)
    std::memcpy(arena.data() + c * bytes, arena.data(), bytes);
  std::vector<float> x(K), y(N);
  for (auto& v : x)
    v = u(g);
  const cpu<A> be{nullptr};
  double best = 1e9;
  for (int rep = 0; rep < reps; ++rep) {
    const double t0 = tcpu();
    const int iters = int(copies) * 2;
    for (int i = 0; i < iters; ++i) {
      const unsigned char* w = arena.data() + (i % copies) * bytes;
      if constexpr (std::is_same_v<Block, bf16>) {
        (void)linear(be, linear_args<float, bf16>{make_view<const float>(x.data(), 1, K),
                                                  make_view(reinterpret_cast<const bf16*>(w), N, K),
                                                  make_view(y.data(), 1, N)});
      } else {
        quant_linear_args<float, Block> a{make_view<const float>(x.data(), 1, K),
                                          make_view(reinterpret_cast<const Block*>(w), N, K / 32),
                                          make_view(y.data(), 1, N)};
        if (kind == 0)
          detail::quant_gemv<A>(a, 0, N);
        else
          (void)quant_linear(be, a);
      }
    }
    best = std::min(best, (tcpu() - t0) / iters);
  }
  return double(bytes) / best / 1e9;
}
int main(int argc, char** argv) {
  const index_t N = argc > 1 ? atoi(argv[1]) : 8192, K = argc > 2 ? atoi(argv[2]) : 2048;
  const std::size_t big = 256u << 20, small = 0;
  for (int round = 0; round < 2; ++round) {
    std::printf("N=%ld K=%ld  GB/s per thread (thread CPU time, best of reps)\n", long(N), long(K));
    std::printf("stream  bf16 %.1f | q8 f32 %.1f int %.1f | q4 f32 %.1f int %.1f\n",
                run<bf16>(0, N, K, big, 3), run<q8_0_block>(0, N, K, big, 3),
                run<q8_0_block>(1, N, K, big, 3), run<q4_0_block>(0, N, K, big, 3),
                run<q4_0_block>(1, N, K, big, 3));
    const index_t Ns = 256;
    std::printf("cache(N=%ld) bf16 %.1f | q8 f32 %.1f int %.1f | q4 f32 %.1f int %.1f\n", long(Ns),
                run<bf16>(0, Ns, K, small, 200), run<q8_0_block>(0, Ns, K, small, 200),
                run<q8_0_block>(1, Ns, K, small, 200), run<q4_0_block>(0, Ns, K, small, 200),
                run<q4_0_block>(1, Ns, K, small, 200));
  }
}
