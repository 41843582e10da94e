// Replaying the launches of a step. The model runner hands each decode step to
// `step_graph<Backend>::run(key, step)`: the host backends simply run it; the CUDA backend
// (backend/cuda/graph.cuh) captures the step's kernels into a CUDA graph the first time a key is
// seen and replays the graph afterwards (one launch instead of hundreds). `key` must change
// whenever anything the step's launches bake in changes: sizes, buffer addresses.
#pragma once

#include <cstdint>

#include "rodimus/core/backend.hpp"
#include "rodimus/core/status.hpp"

namespace rodimus {

template <class Backend>
class step_graph; // specialised per backend (a missing one is a compile error)

/// The host backends run every step as it comes.
struct host_step_graph {
  template <class Step> [[nodiscard]] status run(std::uint64_t, Step&& step) { return step(); }
  void clear() noexcept {}
  std::uint64_t captures() const noexcept { return 0; }
};

template <> class step_graph<scalar> : public host_step_graph {
public:
  explicit step_graph(const scalar&) {}
};
template <class Arch> class step_graph<cpu<Arch>> : public host_step_graph {
public:
  explicit step_graph(const cpu<Arch>&) {}
};

} // namespace rodimus
