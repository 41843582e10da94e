// Helpers of the primitive tests (scalar reference and backends): whole-vector dtype conversions,
// caller-owned workspace memory, and the check that a failed status names the argument.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <vector>

#include "rodimus/core/dtype.hpp"
#include "rodimus/core/status.hpp"
#include "rodimus/core/workspace.hpp"
#include "support/test_support.hpp"

namespace rodimus::test {

/// Every value of x rounded to To (round to nearest even for bf16 and f16).
template <class To> std::vector<To> convert(const std::vector<double>& x) {
  std::vector<To> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    out[i] = store_as<To>(x[i]);
  return out;
}

/// Every value of x widened to double.
template <class T> std::vector<double> widen(const std::vector<T>& x) {
  std::vector<double> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    out[i] = load_as<double>(x[i]);
  return out;
}

/// x after a round trip through T: the values that a kernel storing T actually sees.
template <class T> std::vector<double> rounded(const std::vector<double>& x) {
  return widen(convert<T>(x));
}

/// x rounded to bf16 once (round to nearest even) and stored back as T (exact for bf16 T): what
/// the tensor cores of CUDA's rounded mode (cuda_matmul::rounded) multiply.
template <class T> std::vector<T> round_bf16(const std::vector<T>& x) {
  std::vector<T> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    y[i] = store_as<T>(load_as<float>(store_as<bf16>(load_as<float>(x[i]))));
  return y;
}

/// True when every element is NaN: a poisoned output that nothing wrote.
template <class T> bool all_nan(const std::vector<T>& x) {
  for (const T& e : x)
    if (!std::isnan(load_as<double>(e))) return false;
  return true;
}

/// Padding rows (primitives/slots.hpp) of an output of rows of `width` elements, poisoned with NaN
/// before the backend's call and the reference's: the rows where skip[r] holds must still be all
/// NaN in both (neither wrote them); they are removed from got and want, so that the other rows
/// compare with check_close.
template <class A, class B>
void check_skipped_rows(std::vector<A>& got, std::vector<B>& want, std::size_t width,
                        const std::vector<bool>& skip) {
  REQUIRE(got.size() == skip.size() * width);
  REQUIRE(want.size() == got.size());
  std::size_t kept = 0;
  for (std::size_t r = 0; r < skip.size(); ++r) {
    const std::vector<A> g(got.begin() + std::ptrdiff_t(r * width),
                           got.begin() + std::ptrdiff_t((r + 1) * width));
    const std::vector<B> w(want.begin() + std::ptrdiff_t(r * width),
                           want.begin() + std::ptrdiff_t((r + 1) * width));
    if (skip[r]) {
      CAPTURE(r);
      CHECK(all_nan(g)); // the backend left the padding row alone
      CHECK(all_nan(w)); // so did the reference
      continue;
    }
    std::copy(g.begin(), g.end(), got.begin() + std::ptrdiff_t(kept * width));
    std::copy(w.begin(), w.end(), want.begin() + std::ptrdiff_t(kept * width));
    ++kept;
  }
  got.resize(kept * width);
  want.resize(kept * width);
}

/// Workspace memory of `bytes` bytes (a kernel's *_workspace_bytes). The base is deliberately one
/// byte past an allocation, never aligned, so the alignment slack of workspace_bytes is exercised.
struct workspace_buffer {
  std::vector<unsigned char> storage;
  explicit workspace_buffer(std::size_t bytes) : storage(bytes + 1) {}
  workspace get() { return workspace{storage.data() + 1, storage.size() - 1, 0}; }
};

/// CHECK that `s` failed with `code`, naming the argument `what`.
inline void check_status(status s, status_code code, const char* what) {
  INFO("status: " << to_string(s.code) << " '" << s.what << "', expected " << to_string(code)
                  << " '" << what << "'");
  CHECK(s.code == code);
  CHECK(std::string(s.what) == std::string(what));
}

/// One bad argument: a change to valid arguments, and the failure it must cause.
template <class Args> struct bad_case {
  const char* label;
  void (*mutate)(Args&);
  status_code code;
  const char* what;
};

/// For every case: copy `valid`, apply the change, and check_status(run(copy), code, what).
template <class Args, class Run>
void check_bad_cases(const Args& valid, Run run, std::initializer_list<bad_case<Args>> cases) {
  for (const bad_case<Args>& c : cases) {
    CAPTURE(std::string(c.label));
    Args a = valid;
    c.mutate(a);
    check_status(run(a), c.code, c.what);
  }
}

} // namespace rodimus::test
