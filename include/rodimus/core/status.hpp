// `status`: what kernel and block entry points return. They never throw, print or exit, so engines
// built with -fno-exceptions can embed them. A failed status names the argument that was wrong.
#pragma once

#include "rodimus/core/macros.hpp"

namespace rodimus {

enum class status_code : unsigned char {
  ok = 0,
  null_pointer, // a required pointer is null
  bad_shape,    // a size is negative, zero where it must not be, or disagrees with another
  bad_argument, // a scalar argument is out of range (window < 0, chunk size not supported, ...)
  unsupported,  // valid, but this backend has no implementation for it (e.g. a head size)
  workspace_too_small,
  device_error, // the CUDA runtime reported an error
};

struct [[nodiscard]] status {
  status_code code = status_code::ok;
  /// Static string naming the argument (or the CUDA call) that failed; empty when ok.
  const char* what = "";

  RODIMUS_HOST_DEVICE constexpr bool ok() const noexcept { return code == status_code::ok; }
  RODIMUS_HOST_DEVICE constexpr explicit operator bool() const noexcept { return ok(); }

  RODIMUS_HOST_DEVICE static constexpr status success() noexcept { return {}; }
  RODIMUS_HOST_DEVICE static constexpr status fail(status_code c, const char* what) noexcept {
    return {c, what};
  }
};

constexpr const char* to_string(status_code c) noexcept {
  switch (c) {
  case status_code::ok: return "ok";
  case status_code::null_pointer: return "null pointer";
  case status_code::bad_shape: return "bad shape";
  case status_code::bad_argument: return "bad argument";
  case status_code::unsupported: return "unsupported";
  case status_code::workspace_too_small: return "workspace too small";
  case status_code::device_error: return "device error";
  }
  return "unknown status";
}

} // namespace rodimus

/// Return early from a function that returns `status` when `expr` fails.
#define RODIMUS_TRY(expr)                                                                          \
  do {                                                                                             \
    ::rodimus::status rodimus_try_s_ = (expr);                                                     \
    if (!rodimus_try_s_.ok()) return rodimus_try_s_;                                               \
  } while (0)

/// Fail with `code` naming `what` unless `cond` holds.
#define RODIMUS_REQUIRE(cond, code, what)                                                          \
  do {                                                                                             \
    if (!(cond)) return ::rodimus::status::fail(::rodimus::status_code::code, what);               \
  } while (0)
