// Input data and workspace memory shared by the CPU benchmark binaries (the machine-limit probes
// and the reporting are in limits.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "rodimus/core/dtype.hpp"
#include "rodimus/core/workspace.hpp"

namespace rodimus::bench {

/// n values in [lo, hi) from a linear congruential generator started at `seed`, rounded to T:
/// the same data on every run and every machine, so timings compare across runs.
template <class T> std::vector<T> filled(std::size_t n, float lo, float hi, std::uint32_t seed) {
  std::vector<T> v(n);
  std::uint32_t s = seed * 2654435761u + 1;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = store_as<T>(lo + (hi - lo) * float(s >> 8) * (1.0f / 16777216.0f));
  }
  return v;
}

/// Caller-owned workspace memory for a kernel's *_workspace_bytes (which already count the
/// alignment slack), plus 512 spare bytes.
struct byte_workspace {
  std::vector<std::uint64_t> storage;
  explicit byte_workspace(std::size_t bytes) : storage(bytes / 8 + 64) {}
  workspace get() { return workspace{storage.data(), storage.size() * 8, 0}; }
};

} // namespace rodimus::bench
