// Built against the installed package by scripts/test.sh (find_package and pkg-config): includes
// the umbrella header and runs a primitive whose answer is known by construction (x times the
// identity).
#include <rodimus/rodimus.hpp>

#include <cstdio>
#include <random>
#include <vector>

int main() {
  constexpr int m = 3, k = 5;
  std::mt19937 gen(std::random_device{}());
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(m * k), eye(k * k, 0.0f), y(m * k, -1.0f);
  for (auto& v : x)
    v = dist(gen);
  for (int i = 0; i < k; ++i)
    eye[i * k + i] = 1.0f;
  rodimus::linear_args<float, float> args{rodimus::make_view<const float>(x.data(), m, k),
                                          rodimus::make_view<const float>(eye.data(), k, k),
                                          rodimus::make_view(y.data(), m, k)};
  const rodimus::status s = rodimus::linear(rodimus::scalar{}, args);
  if (!s.ok() || y != x) {
    std::printf("consumer: linear with the identity did not return its input (%s)\n",
                rodimus::to_string(s).c_str());
    return 1;
  }
  std::printf("consumer: rodimus %d.%d.%d works from the installed package\n",
              RODIMUS_VERSION_MAJOR, RODIMUS_VERSION_MINOR, RODIMUS_VERSION_PATCH);
  return 0;
}
