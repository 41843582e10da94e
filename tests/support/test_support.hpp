// Shared helpers of the tests: paths to the test data, fresh random inputs, poisoned outputs and
// tolerance comparisons. Every test draws a new seed (printed on failure) unless RODIMUS_TEST_SEED
// is set, so reruns explore new inputs and a failure can be replayed.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "rodimus/core/dtype.hpp"
#include "rodimus/io/safetensors.hpp"

namespace rodimus::test {

inline std::string data_dir() { return RODIMUS_TEST_DATA_DIR; }
inline std::string golden_dir() { return data_dir() + "/golden"; }
inline std::string source_dir() { return RODIMUS_SOURCE_DIR; }
inline std::string binary_dir() { return RODIMUS_BINARY_DIR; }

/// The seed of this run: RODIMUS_TEST_SEED if set, else fresh from the OS.
inline std::uint64_t run_seed() {
  static const std::uint64_t seed = [] {
    if (const char* s = std::getenv("RODIMUS_TEST_SEED"))
      return std::uint64_t(std::strtoull(s, nullptr, 10));
    return (std::uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
  }();
  return seed;
}

/// A generator seeded from the run seed and a per-test salt; a failed run prints the run seed.
inline std::mt19937_64 rng(std::uint64_t salt = 0) {
  return std::mt19937_64(run_seed() ^ (salt * 0x9e3779b97f4a7c15ull));
}

template <class T>
std::vector<T> uniform(std::mt19937_64& g, std::size_t n, double lo = -1.0, double hi = 1.0) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v)
    x = store_as<T>(d(g));
  return v;
}

/// NaN in every element, so a kernel that forgets to write an output is caught.
template <class T> void poison(std::vector<T>& v) {
  for (auto& x : v)
    x = store_as<T>(std::numeric_limits<float>::quiet_NaN());
}

template <class T> double to_double(T v) { return load_as<double>(v); }

template <class A, class B> double max_abs_diff(const std::vector<A>& a, const std::vector<B>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(to_double(a[i]) - to_double(b[i]));
    if (!(d <= m)) m = std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
  }
  return m;
}

/// max|a|; infinity when any element is NaN (so an unwritten, poisoned output never looks small).
template <class A> double max_abs(const std::vector<A>& a) {
  double m = 0;
  for (const auto& x : a) {
    const double v = std::fabs(to_double(x));
    if (std::isnan(v)) return std::numeric_limits<double>::infinity();
    m = std::max(m, v);
  }
  return m;
}

/// CHECK that max|got - want| <= rel * max(floor, max|want|), with the numbers in the message.
template <class A, class B>
void check_close(const std::vector<A>& got, const std::vector<B>& want, double rel,
                 double floor = 0.0, const std::string& what = "") {
  const double diff = max_abs_diff(got, want);
  const double bound = rel * std::max(floor, max_abs(want));
  INFO(what << ": max|got - want| = " << diff << ", bound = " << bound << " (rel " << rel
            << " x max(" << floor << ", max|want| = " << max_abs(want) << "))");
  CHECK(std::isfinite(diff)); // NaN anywhere (in got or want) fails here
  CHECK(diff <= bound);
}

/// Open a golden safetensors file from tests/data/golden.
inline io::safetensors_file open_golden(const std::string& relative) {
  return io::safetensors_file::open(golden_dir() + "/" + relative);
}

} // namespace rodimus::test
