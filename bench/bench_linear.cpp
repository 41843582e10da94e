// linear() benchmarks: y = x W^T with weights used in place.
//   linear/<backend>/<weight dtype>/M/N/K
// M = 1 (decode) is a matrix-vector product bound by the weight stream: judged against the read
// bandwidth, the weights rotating through a 256 MiB arena so every call streams them from memory.
// M > 1 (prefill) is judged against the FMA peak (2*M*N*K FLOPs). Shapes from Rodimus+ 1.6B:
// mixer fc (8192 x 2048), mixer out_proj (2048 x 4096), FFN fc (5472 x 2048), FFN out_proj
// (2048 x 2736).
#include <vector>

#include "limits.hpp"
#include "rodimus/backend/cpu/linear.hpp"

using namespace rodimus;
using namespace rodimus::bench;

namespace {

template <class Backend, class Weight> void linear_bench(benchmark::State& st) {
  const index_t M = st.range(0), N = st.range(1), K = st.range(2);
  const std::size_t wbytes = std::size_t(N * K) * sizeof(Weight);
  const std::size_t copies = std::max<std::size_t>(1, kArenaBytes / wbytes);
  std::vector<float> x(std::size_t(M * K), 0.01f), y(std::size_t(M * N));
  const Backend be = backend_traits<Backend>::make();
  std::size_t i = 0;
  for (auto _ : st) {
    const Weight* w =
        reinterpret_cast<const Weight*>(arena().as<unsigned char>() + (i++ % copies) * wbytes);
    linear_args<float, Weight> a{make_view<const float>(x.data(), M, K), make_view(w, N, K),
                                 make_view(y.data(), M, N)};
    if (!runs_own_kernel(st, be, a)) break;
    if (!linear(be, a).ok()) st.SkipWithError("linear failed");
  }
  benchmark::DoNotOptimize(y.data());
  const double bytes = double(wbytes) + double(M * K + M * N) * 4;
  report(st, double(M), bytes, 2.0 * double(M) * double(N) * double(K),
         M == 1 ? bound::read : bound::compute);
}

template <class Backend> void register_backend(bool scalar) {
  const std::string be = backend_traits<Backend>::name();
  auto* f32 =
      benchmark::RegisterBenchmark(("linear/" + be + "/f32").c_str(), linear_bench<Backend, float>);
  auto* b16 =
      benchmark::RegisterBenchmark(("linear/" + be + "/bf16").c_str(), linear_bench<Backend, bf16>);
  for (auto* b : {f32, b16}) {
    b->UseRealTime()->Unit(benchmark::kMicrosecond);
    b->Args({1, 2048, 4096});
    if (scalar) continue;
    b->Args({1, 8192, 2048})
        ->Args({1, 5472, 2048})
        ->Args({1, 2048, 2736}) // the FFN down projection (K = F)
        ->Args({1, 288, 4096})  // the mixer's low-rank projections (4N + R rows) of one token,
        ->Args({2, 288, 4096})  // and of its two-row decode call ([c; x], backend/cuda: one launch)
        ->Args({64, 8192, 2048})
        ->Args({512, 2048, 4096});
  }
}

} // namespace

RODIMUS_BENCH_MAIN()
