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
  void* copy_src = nullptr; // the copy probe's two blocks (allocated on first use)
  void* copy_dst = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
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
    if (copy_src) (void)cudaFree(copy_src);
    if (copy_dst) (void)cudaFree(copy_dst);
    if (start) (void)cudaEventDestroy(start);
    if (stop) (void)cudaEventDestroy(stop);
    context.reset();
    if (stream) (void)cudaStreamDestroy(stream);
  }
};

/// One device-to-device copy of 1 GiB on the session's stream, timed with CUDA events: bytes read
/// plus written per second.
double copy_pass(cuda_resources& r) {
  constexpr std::size_t bytes = std::size_t(1) << 30;
  auto ok = [](cudaError_t e, const char* what) {
    if (e != cudaSuccess)
      throw error(std::string("device copy probe: ") + what + ": " + cudaGetErrorString(e));
  };
  if (!r.copy_src) {
    ok(cudaMalloc(&r.copy_src, bytes), "cudaMalloc");
    ok(cudaMalloc(&r.copy_dst, bytes), "cudaMalloc");
    ok(cudaMemsetAsync(r.copy_src, 1, bytes, r.stream), "cudaMemsetAsync");
    ok(cudaEventCreate(&r.start), "cudaEventCreate");
    ok(cudaEventCreate(&r.stop), "cudaEventCreate");
  }
  ok(cudaEventRecord(r.start, r.stream), "cudaEventRecord");
  ok(cudaMemcpyAsync(r.copy_dst, r.copy_src, bytes, cudaMemcpyDeviceToDevice, r.stream),
     "cudaMemcpyAsync");
  ok(cudaEventRecord(r.stop, r.stream), "cudaEventRecord");
  ok(cudaEventSynchronize(r.stop), "cudaEventSynchronize");
  float ms = 0;
  ok(cudaEventElapsedTime(&ms, r.start, r.stop), "cudaEventElapsedTime");
  return 2.0 * double(bytes) / (double(ms) * 1e-3);
}

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
      w, be, capacity,
      std::string("cuda-sm") + std::to_string(prop.major * 10 + prop.minor) + " (" + prop.name +
          ")");
  s.description = s.session->backend_name();
  cuda_resources* r = res.get();
  s.bandwidth_pass = [r] { return copy_pass(*r); };
  s.bandwidth_name = "device copy bandwidth";
  s.resources = std::move(res);
  return s;
}

} // namespace rodimus::cli
