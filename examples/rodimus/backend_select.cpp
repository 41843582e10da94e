#include "backend_select.hpp"

#include <thread>

#include "rodimus/backend/cpu/all.hpp"

namespace rodimus::cli {

backend_options backend_flags(const args& a, const char* fallback) {
  backend_options o;
  o.name = a.get("backend", fallback);
  if (o.name != "scalar" && o.name != "cpu" && o.name != "cuda")
    throw error("--backend must be scalar, cpu or cuda, got '" + o.name + "'");
  // At most 4 participants per hardware thread: more only adds switching (and 100000 would
  // exhaust the machine's processes).
  const long long most = 4 * std::max(1u, std::thread::hardware_concurrency());
  const long long threads = a.get_int("threads", 0);
  if (threads < 0 || threads > most)
    throw error("--threads must be in [0, " + std::to_string(most) + "] (0: one per hardware " +
                "thread), got " + std::to_string(threads));
  o.threads = int(threads);
  return o;
}

backend_session open_session(const model_weights& w, const backend_options& o, int capacity) {
  backend_session s;
  if (o.name == "scalar") {
    s.session = std::make_unique<model_session_on<scalar>>(w, scalar{}, capacity, "scalar");
  } else if (o.name == "cpu") {
    auto pool = std::make_shared<thread_pool>(o.threads);
    s.session = std::make_unique<model_session_on<cpu<>>>(
        w, cpu<>{pool.get()}, capacity, std::string("cpu-") + xsimd::default_arch::name());
    s.resources = std::move(pool);
  } else {
    s = open_cuda_session(w, capacity);
  }
  return s;
}

#if !RODIMUS_TOOL_HAVE_CUDA
backend_session open_cuda_session(const model_weights&, int) {
  throw error("--backend cuda: this build of the rodimus tool has no CUDA backend (configure "
              "with nvcc present: /usr/local/cuda)");
}
#endif

} // namespace rodimus::cli
