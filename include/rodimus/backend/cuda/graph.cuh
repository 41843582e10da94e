// CUDA graphs for the model runner's decode step (the concept is in core/step_graph.hpp): the first
// call with a key captures the step's launches on the tag's stream into a graph; later calls with
// that key replay it with one cudaGraphLaunch. A step on the legacy default stream (stream ==
// nullptr) cannot be captured and runs as it comes.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <map>

#include "rodimus/backend/cuda/cuda.cuh"
#include "rodimus/core/step_graph.hpp"

namespace rodimus {

template <int Sm> class step_graph<cuda<Sm>> {
public:
  explicit step_graph(const cuda<Sm>& be) : be_(be) {}
  step_graph(const step_graph&) = delete;
  step_graph& operator=(const step_graph&) = delete;
  ~step_graph() { clear(); }

  template <class Step> [[nodiscard]] status run(std::uint64_t key, Step&& step) {
    if (be_.stream == nullptr) return step();
    auto it = graphs_.find(key);
    if (it == graphs_.end()) {
      RODIMUS_CUDA_TRY(cudaStreamBeginCapture(be_.stream, cudaStreamCaptureModeThreadLocal));
      const status s = step();
      cudaGraph_t graph = nullptr;
      const cudaError_t end = cudaStreamEndCapture(be_.stream, &graph);
      if (!s.ok() || end != cudaSuccess) {
        if (graph) (void)cudaGraphDestroy(graph);
        (void)cudaGetLastError();
        return s.ok() ? detail::cuda_status(end, "cudaStreamEndCapture") : s;
      }
      cudaGraphExec_t exec = nullptr;
      const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
      (void)cudaGraphDestroy(graph);
      RODIMUS_CUDA_TRY(inst);
      it = graphs_.emplace(key, exec).first;
      ++captures_;
    }
    RODIMUS_CUDA_TRY(cudaGraphLaunch(it->second, be_.stream));
    return status::success();
  }
  /// Forget every captured graph (buffers moved, or the caller wants a fresh capture).
  void clear() noexcept {
    for (auto& g : graphs_)
      (void)cudaGraphExecDestroy(g.second);
    graphs_.clear();
  }
  /// Graphs captured so far (tests check that a steady decode replays instead of capturing).
  std::uint64_t captures() const noexcept { return captures_; }

private:
  cuda<Sm> be_;
  std::map<std::uint64_t, cudaGraphExec_t> graphs_;
  std::uint64_t captures_ = 0;
};

} // namespace rodimus
