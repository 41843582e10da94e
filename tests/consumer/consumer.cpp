// Built against the installed package by scripts/test.sh: includes the umbrella header, runs a
// primitive and checks a value computed two ways.
#include <rodimus/rodimus.hpp>

#include <cmath>
#include <cstdio>

int main() {
  const float x = 1.0f / 3.0f;
  const rodimus::bf16 h(x);
  const float back = float(h);
  if (std::fabs(back - x) > 1e-2f) {
    std::printf("consumer: bf16 round trip failed: %g -> %g\n", x, back);
    return 1;
  }
  std::printf("consumer: rodimus %d.%d.%d headers usable\n", RODIMUS_VERSION_MAJOR,
              RODIMUS_VERSION_MINOR, RODIMUS_VERSION_PATCH);
  return 0;
}
