// The tool's one backend selector: `--backend scalar|cpu|cuda` and `--threads N`, parsed once, and
// the session (runner + state pool, model/session.hpp) built in one place for every command.
#pragma once

#include <memory>
#include <string>

#include "cli.hpp"
#include "rodimus/model/session.hpp"

namespace rodimus::cli {

struct backend_options {
  std::string name; // scalar, cpu or cuda
  int threads = 0;  // cpu: participants of the thread pool (0: one per hardware thread)
};

/// --backend (default `fallback`) and --threads from the command line, checked.
backend_options backend_flags(const args& a, const char* fallback);

/// A session and what it runs on (thread pool, CUDA stream and library handles). The session is
/// declared last so it is destroyed first.
struct backend_session {
  std::shared_ptr<void> resources;
  std::unique_ptr<model_session> session;
  model_session* operator->() const noexcept { return session.get(); }
};

/// A session of `capacity` slots for `w` on the chosen backend (`w` must outlive it).
backend_session open_session(const model_weights& w, const backend_options& o, int capacity);

/// The CUDA backend's session (backend_cuda.cu; throws when the tool was built without CUDA).
backend_session open_cuda_session(const model_weights& w, int capacity);

} // namespace rodimus::cli
