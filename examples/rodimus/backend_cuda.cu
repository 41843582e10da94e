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
  void* gemm_abc = nullptr; // the matrix-product probe's three n x n bf16 matrices
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
    if (gemm_abc) (void)cudaFree(gemm_abc);
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

/// Pseudo-random bf16 values in [-1, 1) (a hash of the index): the tensor cores' rate depends on
/// the data, and constant matrices would overstate it.
__global__ void fill_random_bf16(std::uint16_t* p, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    std::uint32_t h = std::uint32_t(i) * 2654435761u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    const float v = float(h >> 8) * (2.0f / 16777216.0f) - 1.0f;
    p[i] = bf16(v).bits;
  }
}

/// One bf16 matrix product of n = 8192 (bf16 inputs and output, f32 accumulation: cuBLAS's
/// tensor-core GEMM) on the session's stream, timed with CUDA events: FLOP/s (2 n^3 per product).
double matmul_pass(cuda_resources& r) {
  constexpr int n = 8192;
  constexpr std::size_t count = std::size_t(n) * n;
  auto ok = [](cudaError_t e, const char* what) {
    if (e != cudaSuccess)
      throw error(std::string("matrix-product probe: ") + what + ": " + cudaGetErrorString(e));
  };
  auto* abc = static_cast<std::uint16_t*>(r.gemm_abc);
  auto gemm = [&] {
    const float alpha = 1.0f, beta = 0.0f;
    const cublasStatus_t st =
        cublasGemmEx(r.context->cublas(), CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha, abc,
                     CUDA_R_16BF, n, abc + count, CUDA_R_16BF, n, &beta, abc + 2 * count,
                     CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) throw error("matrix-product probe: cublasGemmEx failed");
  };
  if (!abc) {
    ok(cudaMalloc(&r.gemm_abc, 3 * count * sizeof(std::uint16_t)), "cudaMalloc");
    abc = static_cast<std::uint16_t*>(r.gemm_abc);
    fill_random_bf16<<<1024, 256, 0, r.stream>>>(abc, 2 * count);
    ok(cudaGetLastError(), "fill");
    if (!r.start) {
      ok(cudaEventCreate(&r.start), "cudaEventCreate");
      ok(cudaEventCreate(&r.stop), "cudaEventCreate");
    }
    gemm(); // warm-up: cuBLAS picks and loads its kernel
  }
  ok(cudaEventRecord(r.start, r.stream), "cudaEventRecord");
  gemm();
  ok(cudaEventRecord(r.stop, r.stream), "cudaEventRecord");
  ok(cudaEventSynchronize(r.stop), "cudaEventSynchronize");
  float ms = 0;
  ok(cudaEventElapsedTime(&ms, r.start, r.stop), "cudaEventElapsedTime");
  return 2.0 * double(n) * double(n) * double(n) / (double(ms) * 1e-3);
}

} // namespace

backend_session open_cuda_session(const model_weights& w, int capacity, const backend_options& o) {
  auto res = std::make_shared<cuda_resources>();
  cudaDeviceProp prop{};
  (void)cudaGetDeviceProperties(&prop, 0);
  cuda<90> be;
  be.stream = res->stream;
  be.context = res->context.get();
  be.matmul = o.rounded_matmul ? cuda_matmul::rounded : cuda_matmul::exact;
  be.launch = o.serial_launch ? cuda_launch::serial : cuda_launch::overlapped;
  be.tuning = cuda_tuning{o.gla_columns,
                          o.gla_warps,
                          o.swska_rows,
                          o.swska_keys,
                          o.swska_decode_min_keys,
                          o.gemv_kernel == 1   ? cuda_gemv::registers
                          : o.gemv_kernel == 2 ? cuda_gemv::streamed
                                               : cuda_gemv::policy};
  if (!detail::gla_tuning_listed(be.tuning))
    throw error("--tuning gla=" + std::to_string(o.gla_columns) + "x" +
                std::to_string(o.gla_warps) +
                ": not a tile of the chunked GLA (32x8, 64x8, "
                "128x8, 128x16)");
  if (!detail::swska_tuning_listed(be.tuning))
    throw error("--tuning swska=" + std::to_string(o.swska_rows) + "x" +
                std::to_string(o.swska_keys) +
                ": not a tile of the SW-SKA prefill (16x64, "
                "32x32, 32x64)");
  backend_session s;
  s.session = std::make_unique<model_session_on<cuda<90>>>(
      w, be, capacity,
      std::string("cuda-sm") + std::to_string(prop.major * 10 + prop.minor) + " (" + prop.name +
          ")" + (o.rounded_matmul ? ", rounded matmul" : "") +
          (o.serial_launch ? ", serial launches" : ""));
  s.description = s.session->backend_name();
  cuda_resources* r = res.get();
  s.bandwidth_pass = [r] { return copy_pass(*r); };
  s.bandwidth_name = "device copy bandwidth";
  s.matmul_pass = [r] { return matmul_pass(*r); };
  s.matmul_name = "bf16 matrix-product rate (cuBLAS, 8192^3)";
  s.resources = std::move(res);
  return s;
}

} // namespace rodimus::cli
