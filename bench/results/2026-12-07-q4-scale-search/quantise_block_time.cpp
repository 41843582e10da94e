// q4_0 quantisation before and after the scale search, on one thread: time per block and the
// squared error of the blocks. "before" is the plain rule as quant_format.hpp had it until
// 2026-12-07 (copied here), "after" is quantise_block. Inputs: tiny-coder's projections and head
// as raw f32 files (extract_weights.py writes them) and 2^21 Gaussian values.
//
//   python3 extract_weights.py /tmp/qexp
//   g++ -O3 -march=native -std=c++17 -I include quantise_block_time.cpp -o qt && ./qt /tmp/qexp
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "rodimus/primitives/quant_format.hpp"

using namespace rodimus;

namespace {

void plain_q4_0(const float* x, q4_0_block& out) {
  float m = 0.0f;
  for (int j = 0; j < 32; ++j)
    if (std::fabs(x[j]) > std::fabs(m)) m = x[j];
  out.scale = f16(m / -8.0f);
  const float d = f16::to_float(out.scale.bits), inv = d != 0 ? 1.0f / d : 0.0f;
  int n[32];
  for (int j = 0; j < 32; ++j)
    n[j] = int(std::fmin(15.0f, std::fmax(0.0f, std::nearbyint(x[j] * inv) + 8.0f)));
  for (int j = 0; j < 16; ++j)
    out.nibbles[j] = std::uint8_t(n[j] | (n[j + 16] << 4));
}

std::vector<float> load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  f.seekg(0, std::ios::end);
  std::vector<float> v(std::size_t(f.tellg()) / 4);
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * 4));
  return v;
}

double sse(const float* x, const q4_0_block& b) {
  double s = 0;
  for (int j = 0; j < 32; ++j) {
    const double e = double(x[j]) - dequantise(b, j);
    s += e * e;
  }
  return s;
}

} // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "/tmp/qexp";
  std::vector<std::pair<const char*, std::vector<float>>> sets = {
      {"proj", load(dir + "/proj.f32")}, {"head", load(dir + "/head.f32")}};
  std::mt19937_64 g(1);
  std::normal_distribution<float> normal;
  std::vector<float> gauss(1 << 21);
  for (auto& x : gauss)
    x = normal(g);
  sets.push_back({"gauss", gauss});
  for (auto& [name, x] : sets) {
    const std::size_t nb = x.size() / 32;
    std::vector<q4_0_block> a(nb), b(nb);
    double ta = 1e9, tb = 1e9;
    for (int rep = 0; rep < 3; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      for (std::size_t i = 0; i < nb; ++i)
        plain_q4_0(x.data() + 32 * i, a[i]);
      const auto t1 = std::chrono::steady_clock::now();
      for (std::size_t i = 0; i < nb; ++i)
        (void)quantise_block(x.data() + 32 * i, b[i]);
      const auto t2 = std::chrono::steady_clock::now();
      ta = std::min(ta, std::chrono::duration<double>(t1 - t0).count());
      tb = std::min(tb, std::chrono::duration<double>(t2 - t1).count());
    }
    double sa = 0, sb = 0;
    std::size_t worse = 0, same = 0;
    for (std::size_t i = 0; i < nb; ++i) {
      const double u = sse(x.data() + 32 * i, a[i]), v = sse(x.data() + 32 * i, b[i]);
      sa += u;
      sb += v;
      worse += v > u * (1 + 1e-7);
      same += std::memcmp(&a[i], &b[i], sizeof(q4_0_block)) == 0;
    }
    std::printf("%-6s old %.1f ns/block, new %.1f ns/block (%.1fx); sse ratio %.4f; worse blocks "
                "%zu; unchanged blocks %.1f%%\n",
                name, ta / double(nb) * 1e9, tb / double(nb) * 1e9, tb / ta, sb / sa, worse,
                100.0 * double(same) / double(nb));
  }
}
