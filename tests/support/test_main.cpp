// doctest main of every test binary: prints the random seed of a failed run so it can be replayed.
#define DOCTEST_CONFIG_IMPLEMENT
#include "support/test_support.hpp"

#include <cstdio>

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int result = context.run();
  if (result != 0)
    std::fprintf(stderr, "failed; replay this run with RODIMUS_TEST_SEED=%llu\n",
                 static_cast<unsigned long long>(rodimus::test::run_seed()));
  return result;
}
