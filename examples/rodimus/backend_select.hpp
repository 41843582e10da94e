// The tool's one backend selector: `--backend scalar|cpu|cuda` and `--threads N`, parsed once, and
// the session (runner + state pool, runtime/session.hpp) built in one place for every command.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cli.hpp"
#include "rodimus/backend/cpu/call_profile.hpp"
#include "rodimus/runtime/session.hpp"

namespace rodimus::cli {

struct backend_options {
  std::string name;            // scalar, cpu or cuda
  int threads = 0;             // cpu: participants of the thread pool (0: one per hardware thread)
  bool rounded_matmul = false; // cuda: --matmul rounded (cuda_matmul::rounded), else exact
  bool serial_launch = false;  // cuda: --launch serial (cuda_launch::serial), else overlapped
  bool profile = false;        // cpu: time the thread pool's calls per primitive (call_profile)
  /// cuda: --tuning gla=CxW,swska=RxK,swska_decode=K,gemv=policy|registers|streamed
  /// (backend/cuda/cuda.cuh's cuda_tuning; 0: per call).
  int gla_columns = 0, gla_warps = 0, swska_rows = 0, swska_keys = 0, swska_decode_min_keys = 0;
  int gemv_kernel = -1; // gemv: -1 not given (the policy), 0 policy, 1 registers, 2 streamed
};

/// --backend (default `fallback`), --threads (default `threads_fallback`; see threads_flag) and
/// --matmul exact|rounded, --launch overlapped|serial and --tuning
/// gla=CxW,swska=RxK,swska_decode=K,gemv=policy|registers|streamed
/// (cuda only; backend/cuda/cuda.cuh's cuda_matmul, cuda_launch and cuda_tuning) from the command
/// line, checked (swska_decode's range here; the tiles a kernel lists when the CUDA session opens).
backend_options backend_flags(const args& a, const char* fallback, int threads_fallback);

/// A session and what it runs on (thread pool, CUDA stream and library handles). The session is
/// declared last so it is destroyed first.
struct backend_session {
  std::shared_ptr<void> resources;
  std::unique_ptr<model_session> session;
  std::string description; // what the tool prints: "2 threads", "cuda-sm90 (NVIDIA H200)"
  /// One pass of the memory-bandwidth probe of this backend, in bytes/s: the host read probe
  /// (backend/cpu/read_probe.hpp) for scalar and cpu, a device-to-device copy (bytes read +
  /// written, CUDA events) for cuda. What `rodimus bench` measures decode against.
  std::function<double()> bandwidth_pass;
  std::string bandwidth_name; // "read bandwidth", "device copy bandwidth"
  /// One pass of the backend's 16-bit matrix-product probe in FLOP/s (cuda: a bf16 cuBLAS GEMM of
  /// 8192^3, CUDA events); empty where none exists (the host backends).
  std::function<double()> matmul_pass;
  std::string matmul_name;
  /// cpu with backend_options::profile: the thread pool's calls timed per primitive.
  std::shared_ptr<call_profile> profile;
  model_session* operator->() const noexcept { return session.get(); }
};

/// A session of `capacity` slots for `w` on the chosen backend (`w` must outlive it).
backend_session open_session(const model_weights& w, const backend_options& o, int capacity);

/// The CUDA backend's session (backend_cuda.cu; throws when the tool was built without CUDA).
backend_session open_cuda_session(const model_weights& w, int capacity, const backend_options& o);

} // namespace rodimus::cli
