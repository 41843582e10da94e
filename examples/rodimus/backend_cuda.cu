// The CUDA session of the tool: one non-blocking stream and the library handles on it
// (cuda_context), the weights copied to the device once, the state pool in device memory.
#include <cuda_runtime.h>

#include "backend_select.hpp"
#include "rodimus/rodimus.cuh"

namespace rodimus::cli {

namespace {

struct cuda_resources {
  cudaStream_t stream = nullptr;
  std::unique_ptr<cuda_context> context;
  cuda_resources() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
      (void)cudaGetLastError();
      throw error("--backend cuda: no CUDA device is available");
    }
    if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess)
      throw error("--backend cuda: cannot create a CUDA stream");
    context = std::make_unique<cuda_context>(stream);
  }
  ~cuda_resources() {
    context.reset();
    if (stream) (void)cudaStreamDestroy(stream);
  }
};

} // namespace

backend_session open_cuda_session(const model_weights& w, int capacity) {
  auto res = std::make_shared<cuda_resources>();
  cudaDeviceProp prop{};
  (void)cudaGetDeviceProperties(&prop, 0);
  cuda<90> be;
  be.stream = res->stream;
  be.context = res->context.get();
  backend_session s;
  s.session = std::make_unique<model_session_on<cuda<90>>>(
      w, be, capacity, std::string("cuda-sm") + std::to_string(prop.major * 10 + prop.minor) +
                           " (" + prop.name + ")");
  s.resources = std::move(res);
  return s;
}

} // namespace rodimus::cli
