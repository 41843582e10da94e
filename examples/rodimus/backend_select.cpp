#include "backend_select.hpp"

#include "rodimus/backend/cpu/all.hpp"
#include "rodimus/backend/cpu/read_probe.hpp"

namespace rodimus::cli {

namespace {

/// --tuning: comma-separated items, NAME=AxB with NAME gla (value columns x warps of the chunked
/// GLA) or swska (query rows per warp x keys per tile of the SW-SKA prefill), swska_decode=K
/// (the fewest keys of an SW-SKA decode piece, 1 to 4096), or gemv=policy|registers|streamed
/// (the GEMV kernel at 1 or 2 rows); A, B and K positive integers.
void tuning_flag(const std::string& text, backend_options& o) {
  if (text.empty()) return;
  std::size_t at = 0;
  for (;;) {
    const std::size_t end = text.find(',', at);
    const std::string item = text.substr(at, end == std::string::npos ? end : end - at);
    const auto bad = [&] {
      return error(
          "--tuning: expected NAME=AxB items with positive A and B (gla=64x8, "
          "swska=32x32), swska_decode=K (1 to 4096) or gemv=policy|registers|streamed, got '" +
          item + "'");
    };
    const std::size_t eq = item.find('=');
    if (eq == 0 || eq == std::string::npos) throw bad();
    const std::string name = item.substr(0, eq);
    if (name != "gla" && name != "swska" && name != "swska_decode" && name != "gemv")
      throw error("--tuning: unknown kernel '" + name + "' (gla, swska, swska_decode or gemv)");
    auto number = [&](const std::string& digits) {
      if (digits.empty() || digits.size() > 4 ||
          digits.find_first_not_of("0123456789") != std::string::npos || std::stoi(digits) == 0)
        throw bad();
      return std::stoi(digits);
    };
    if (name == "gemv") {
      if (o.gemv_kernel >= 0) throw error("--tuning: " + name + " given twice");
      const std::string value = item.substr(eq + 1);
      if (value != "policy" && value != "registers" && value != "streamed") throw bad();
      o.gemv_kernel = value == "registers" ? 1 : value == "streamed" ? 2 : 0;
    } else if (name == "swska_decode") {
      if (o.swska_decode_min_keys != 0) throw error("--tuning: " + name + " given twice");
      o.swska_decode_min_keys = number(item.substr(eq + 1));
      if (o.swska_decode_min_keys > 4096) throw bad();
    } else {
      if (name == "gla" ? o.gla_columns != 0 : o.swska_rows != 0)
        throw error("--tuning: " + name + " given twice");
      const std::size_t x = item.find('x', eq);
      if (x == std::string::npos) throw bad();
      const int first = number(item.substr(eq + 1, x - eq - 1)),
                second = number(item.substr(x + 1));
      (name == "gla" ? o.gla_columns : o.swska_rows) = first;
      (name == "gla" ? o.gla_warps : o.swska_keys) = second;
    }
    if (end == std::string::npos) break;
    at = end + 1;
  }
}

} // namespace

backend_options backend_flags(const args& a, const char* fallback, int threads_fallback) {
  backend_options o;
  o.name = a.get("backend", fallback);
  if (o.name != "scalar" && o.name != "cpu" && o.name != "cuda")
    throw error("--backend must be scalar, cpu or cuda, got '" + o.name + "'");
  o.threads = threads_flag(a, threads_fallback);
  const std::string matmul = a.get("matmul", "exact");
  if (matmul != "exact" && matmul != "rounded")
    throw error("--matmul must be exact or rounded, got '" + matmul + "'");
  if (matmul == "rounded" && o.name != "cuda")
    throw error("--matmul rounded applies to --backend cuda only (the host backends multiply f32 "
                "activations exactly)");
  o.rounded_matmul = matmul == "rounded";
  const std::string launch = a.get("launch", "overlapped");
  if (launch != "overlapped" && launch != "serial")
    throw error("--launch must be overlapped or serial, got '" + launch + "'");
  if (launch == "serial" && o.name != "cuda")
    throw error("--launch serial applies to --backend cuda only (it orders GPU kernels)");
  o.serial_launch = launch == "serial";
  const std::string tuning = a.get("tuning", "");
  tuning_flag(tuning, o);
  if (!tuning.empty() && o.name != "cuda")
    throw error(
        "--tuning applies to --backend cuda only (it picks CUDA kernels' tiles and pieces)");
  return o;
}

backend_session open_session(const model_weights& w, const backend_options& o, int capacity) {
  backend_session s;
  if (o.profile && o.name != "cpu")
    throw error("--profile applies to --backend cpu only (it times the thread pool's calls)");
  if (o.name == "scalar") {
    s.session = std::make_unique<model_session_on<scalar>>(w, scalar{}, capacity, "scalar");
    s.description = "scalar reference";
  } else if (o.name == "cpu") {
    auto pool = std::make_shared<thread_pool>(o.threads);
    s.session = std::make_unique<model_session_on<cpu<>>>(
        w, cpu<>{pool.get()}, capacity, std::string("cpu-") + xsimd::default_arch::name());
    s.description = std::to_string(pool->size()) + " threads";
    if (o.profile) {
      s.profile = std::make_shared<call_profile>();
      pool->set_profile(s.profile.get());
    }
    s.resources = std::move(pool);
  } else {
    return open_cuda_session(w, capacity, o);
  }
  // The host read probe (512 MiB, prefetching), on the backend's threads.
  auto probe = std::make_shared<read_probe<>>(std::size_t(512) << 20);
  thread_pool* threads = o.name == "cpu" ? static_cast<thread_pool*>(s.resources.get()) : nullptr;
  s.bandwidth_pass = [probe, threads] { return probe->pass(threads); };
  s.bandwidth_name = "read bandwidth";
  return s;
}

#if !RODIMUS_TOOL_HAVE_CUDA
backend_session open_cuda_session(const model_weights&, int, const backend_options&) {
  throw error("--backend cuda: this build of the rodimus tool has no CUDA backend (configure "
              "with nvcc present: /usr/local/cuda)");
}
#endif

} // namespace rodimus::cli
