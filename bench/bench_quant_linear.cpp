// quant_linear() benchmarks: y = x deq(W)^T with q8_0 / q4_0 weights, beside linear()'s bf16.
//   quant_linear/<backend>/<q8_0|q4_0|q8_0.groups16|q4_0.groups16|bf16>/M/N/K
// q8_0 / q4_0: the rows as blocks (the saved layout); .groups16: the rows in the decode layout the
// model loader makes (rodimus/primitives/quant_layout.hpp), the same bytes rearranged.
// M = 1 (decode) is bound by the weight stream: judged against the read bandwidth, the weights
// (quantised once from random values) rotating through copies that fill a 256 MiB region so every
// call streams them from memory. M > 1 is judged against the FMA peak (2*M*N*K FLOPs). Shapes of
// Rodimus+ 1.6B: mixer fc (8192 x 2048), mixer out_proj (2048 x 4096), FFN fc (10944 x 2048), FFN
// out_proj (2048 x 2736: K = 85.5 blocks, a partial last block in every row), attention o_proj
// (2048 x 2048), the mixer's low-rank
// projections (2 x 288 x 4096 stacked, 4096 x 32).
#include <cstring>
#include <random>
#include <vector>

#include "limits.hpp"
#include "rodimus/backend/cpu/linear.hpp"
#include "rodimus/backend/cpu/quant_linear.hpp"

using namespace rodimus;
using namespace rodimus::bench;

namespace {

/// Copies of one random (N, K) matrix in format Block (bf16: stored; quantised rows in `layout`)
/// filling the arena.
template <class Block> std::size_t fill_arena(index_t N, index_t K, quant_layout layout) {
  const std::size_t row = std::is_same_v<Block, bf16>
                              ? std::size_t(K) * sizeof(bf16)
                              : std::size_t(quant_blocks(K)) * sizeof(Block);
  const std::size_t bytes = row * std::size_t(N);
  std::vector<unsigned char> one(bytes);
  std::mt19937 g(1);
  std::uniform_real_distribution<float> u(-0.05f, 0.05f);
  std::vector<float> r(static_cast<std::size_t>(K));
  for (index_t n = 0; n < N; ++n) {
    for (auto& v : r)
      v = u(g);
    if constexpr (std::is_same_v<Block, bf16>) {
      for (index_t k = 0; k < K; ++k)
        reinterpret_cast<bf16*>(one.data() + n * row)[k] = bf16(r[std::size_t(k)]);
    } else {
      Block* blocks = reinterpret_cast<Block*>(one.data() + n * row);
      if (!quantise_row(r.data(), K, blocks).ok()) return 0;
      pack_quant_row(blocks, quant_blocks(K), layout);
    }
  }
  const std::size_t copies = std::max<std::size_t>(1, kArenaBytes / bytes);
  for (std::size_t c = 0; c < copies && (c + 1) * bytes <= kArenaBytes; ++c)
    std::memcpy(arena().as<unsigned char>() + c * bytes, one.data(), bytes);
  return bytes;
}

template <class Backend, class Block, quant_layout layout = quant_layout::blocks>
void quant_bench(benchmark::State& st) {
  const index_t M = st.range(0), N = st.range(1), K = st.range(2);
  const std::size_t wbytes = fill_arena<Block>(N, K, layout);
  if (wbytes == 0) return st.SkipWithError("quantise failed");
  const std::size_t copies = std::max<std::size_t>(1, kArenaBytes / wbytes);
  std::vector<float> x(std::size_t(M * K), 0.01f), y(std::size_t(M * N));
  const Backend be = backend_traits<Backend>::make();
  std::size_t i = 0;
  for (auto _ : st) {
    const unsigned char* w = arena().as<unsigned char>() + (i++ % copies) * wbytes;
    status s;
    if constexpr (std::is_same_v<Block, bf16>) {
      const linear_args<float, bf16> a{make_view<const float>(x.data(), M, K),
                                       make_view(reinterpret_cast<const bf16*>(w), N, K),
                                       make_view(y.data(), M, N)};
      if (!runs_own_kernel(st, be, a)) break;
      s = linear(be, a);
    } else {
      const quant_linear_args<float, Block> a{
          make_view<const float>(x.data(), M, K),
          make_view(reinterpret_cast<const Block*>(w), N, quant_blocks(K)),
          make_view(y.data(), M, N), layout};
      if (!runs_own_kernel(st, be, a)) break;
      s = quant_linear(be, a);
    }
    if (!s.ok()) st.SkipWithError("linear failed");
  }
  benchmark::DoNotOptimize(y.data());
  const double bytes = double(wbytes) + double(M * K + M * N) * 4;
  report(st, double(M), bytes, 2.0 * double(M) * double(N) * double(K),
         M == 1 ? bound::read : bound::compute);
}

template <class Backend> void register_backend(bool scalar) {
  const std::string be = backend_traits<Backend>::name();
  auto* q8 = benchmark::RegisterBenchmark(("quant_linear/" + be + "/q8_0").c_str(),
                                          quant_bench<Backend, q8_0_block>);
  auto* q4 = benchmark::RegisterBenchmark(("quant_linear/" + be + "/q4_0").c_str(),
                                          quant_bench<Backend, q4_0_block>);
  auto* q8g =
      benchmark::RegisterBenchmark(("quant_linear/" + be + "/q8_0.groups16").c_str(),
                                   quant_bench<Backend, q8_0_block, quant_layout::groups16>);
  auto* q4g =
      benchmark::RegisterBenchmark(("quant_linear/" + be + "/q4_0.groups16").c_str(),
                                   quant_bench<Backend, q4_0_block, quant_layout::groups16>);
  auto* b16 = benchmark::RegisterBenchmark(("quant_linear/" + be + "/bf16").c_str(),
                                           quant_bench<Backend, bf16>);
  for (auto* b : {q8, q4, q8g, q4g, b16}) {
    b->UseRealTime()->Unit(benchmark::kMicrosecond);
    b->Args({1, 2048, 4096});
    if (scalar) continue;
    b->Args({1, 8192, 2048})
        ->Args({1, 10944, 2048})
        ->Args({1, 2048, 2736}) // the FFN down projection (K % 32 = 16)
        ->Args({1, 2048, 2048}) // the attention's o_proj: the step's smallest big projection
        // the mixer's low-rank projections at batch 1: [c; x] times [in_proj; mem_gate;
        // ch_gate_down]^T (2 rows, 4N + R = 288 outputs), and ch_gate_up (K = R = 32: one block)
        ->Args({2, 288, 4096})
        ->Args({1, 4096, 32})
        ->Args({4, 8192, 2048})
        ->Args({64, 8192, 2048})
        ->Args({64, 2048, 2736});
  }
}

} // namespace

RODIMUS_BENCH_MAIN()
