// rodimus bench: whole-model throughput on a released geometry with random weights.
//
//   rodimus bench --geometry rodimus-1.4b|rodimus-plus-1.6b|rodimus-plus-4b [--layers N]
//                 [--batch B] [--prompt T] [--gen N] [--dtype f32|bf16]
//                 [--backend cpu|scalar|cuda] [--threads N] [--matmul exact|rounded]
//                 [--launch overlapped|serial] [--dir PATH] [--mmap] [--json]
//                 [--weights stored|q8|q4] [--profile]
//
// --weights q8|q4: the big projections and the head block-quantised at load, the low-rank
// projections in q8_0 but the channel gate's up projection (docs/QUANT.md), on --threads threads;
// weight_bytes then counts the quantised bytes. The JSON says which in `quant`.
//
// --backend: cpu (default), scalar or cuda (examples/rodimus/backend_select.hpp); --threads N: the
// CPU backend's threads (1 to 1024; default one per hardware thread). --profile (cpu only): the
// decode steps' parallel calls timed per primitive (backend/cpu/call_profile.hpp; the probe passes
// between steps left out), printed as a table (JSON: `profile`, one object per primitive with
// calls, seconds and share of decode_seconds).
//
// 1. Writes config.json and model.safetensors with random weights initialised as docs/MODEL.md §8
//    describes (write_random_checkpoint, rodimus/model/init.hpp, seed 0) into a private temporary
//    folder (mkdtemp under $TMPDIR or /tmp) removed at the end, or into --dir PATH, where a model
//    of the same configuration written by an earlier run is reused.
// 2. Measures the backend's memory bandwidth: on the host the streaming read bandwidth
//    (rodimus/backend/cpu/read_probe.hpp, passes over 512 MiB), on CUDA a 1 GiB device copy (bytes
//    read + written, CUDA events); 5 passes at start-up and one after each decode step; the limit
//    is the best of them all, so a quiet moment anywhere in the run raises the bar rather than the
//    ratio. `limit` in the JSON names it (read_bandwidth_bytes_per_s holds its value).
// 3. Prefills B sequences of T random tokens, then decodes N tokens for each (batch B per step;
//    each step picks the next tokens greedily on the backend, model_session::decode_greedy, and
//    only the B token ids come back to the host).
//
// On CUDA the bf16 matrix-product rate is measured too (cuBLAS 8192^3, best of 5) and the prefill
// reported against it (matmul_flops_per_s, prefill_flops_per_s = 2 x parameters x tokens/s,
// prefill_matmul_ratio). --matmul rounded: the tensor-core products take f32 activations rounded
// to bf16 once (cuda_matmul::rounded) instead of exactly as two parts, and the SW-SKA prefill runs
// on bf16 tensor cores. --launch serial: each kernel waits for the previous one to finish
// (cuda_launch::serial) instead of overlapping its start with it (the default); the JSON's
// `launch` says which, so the two are compared in one device call.
//
// --json prints one object: prefill_tokens_per_s, decode_tokens_per_s, decode_steps_per_s,
// weight_bytes (every matrix a decode step reads: all layer weights and the LM head; the
// embedding rows gathered per token are not counted unless the head is tied to them),
// read_bandwidth_bytes_per_s (the best probe pass of the run), decode_limit_ratio = weight_bytes x
// decode steps/s / read bandwidth (at batch 1 a step is one token: the share of the
// weight-streaming bound achieved), weights ("memory" or "mapped", see --mmap) and the
// best-step / paired ratios described below.
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend_select.hpp"
#include "cli.hpp"
#include "geometry.hpp"
#include "rodimus/backend/cpu/all.hpp"
#include "rodimus/io/read_file.hpp"
#include "rodimus/model/init.hpp"
#include "rodimus/runtime/runner.hpp"

namespace rodimus::cli {
namespace {

/// The 1-minute load average (Linux /proc/loadavg), or -1 where unavailable.
double load_average() {
  std::ifstream f("/proc/loadavg");
  double l = -1;
  if (!(f >> l)) return -1;
  return l;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0.0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::size_t decode_weight_bytes(const model_weights& w) {
  std::size_t b = w.lm_head().bytes();
  for (const auto& l : w.layers()) {
    for (const weight_matrix* m : {&l.mixer.fc, &l.mixer.out_proj, &l.mixer.in_proj,
                                   &l.mixer.ch_gate_down, &l.mixer.ch_gate_up, &l.mixer.mem_gate})
      b += m->bytes();
    if (w.config().is_plus())
      for (const weight_matrix* m : {&l.attn.q_proj, &l.attn.k_proj, &l.attn.v_proj,
                                     &l.attn.out_proj, &l.ffn.fc, &l.ffn.out_proj})
        b += m->bytes();
  }
  return b;
}

/// A new private folder (mode 0700, unpredictable name) under $TMPDIR or /tmp, removed with
/// everything in it when this goes out of scope.
class private_temp_dir {
public:
  private_temp_dir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/rodimus-bench-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
      throw error(tmpl + ": cannot create a temporary folder: " + std::strerror(errno));
    path_ = tmpl;
  }
  private_temp_dir(const private_temp_dir&) = delete;
  private_temp_dir& operator=(const private_temp_dir&) = delete;
  ~private_temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

/// Whether `dir` already holds this geometry's model (--dir reuses one written before): its
/// config.json equals `config` and model.safetensors exists.
bool holds_model(const std::string& dir, const nlohmann::json& config) {
  std::error_code ec;
  if (!std::filesystem::exists(dir + "/config.json", ec) ||
      !std::filesystem::exists(dir + "/model.safetensors", ec))
    return false;
  const std::string path = dir + "/config.json";
  const std::string text = io::read_regular_file(path);
  try {
    return nlohmann::json::parse(text) == config;
  } catch (const nlohmann::json::exception& e) {
    throw error(path + ": not valid JSON (remove the folder to write a new model): " + e.what());
  }
}

} // namespace

int run_bench(int argc, char** argv) {
  const args a(argc, argv,
               {"geometry", "layers", "batch", "prompt", "gen", "dtype", "backend", "threads",
                "dir", "matmul", "launch", "weights", "tuning"},
               {"json", "mmap", "profile"});
  const geometry g =
      geometry_by_name(a.get("geometry", "rodimus-plus-1.6b"), a.get_int("layers", 0, 0));
  const long long B = a.get_int("batch", 1, 1, 1 << 20), T = a.get_int("prompt", 128, 1),
                  N = a.get_int("gen", 32, 1);
  const std::string dt = a.get("dtype", "bf16");
  if (dt != "f32" && dt != "bf16") throw error("--dtype: expected f32 or bf16, got '" + dt + "'");
  backend_options backend = backend_flags(a, "cpu", 0);
  backend.profile = a.has("profile");
  const bool json = a.has("json");

  // --dir keeps the model for the next run; by default it goes to a private temporary folder that
  // is removed at the end.
  std::optional<private_temp_dir> temp;
  if (!a.has("dir")) temp.emplace();
  const std::string dir = a.has("dir") ? a.get("dir") : temp->path();
  if (!holds_model(dir, g.config)) {
    if (!json)
      std::fprintf(stderr, "writing random %s weights (%s) to %s ...\n", g.name.c_str(), dt.c_str(),
                   dir.c_str());
    write_random_checkpoint(dir, g.config.dump(2) + "\n", dt == "f32" ? dtype::f32 : dtype::bf16);
  }
  const model_weights weights = load_weights(dir, a);
  const backend_session session = open_session(weights, backend, int(B));
  model_session& model = *session.session;
  const model_config& cfg = weights.config();
  if (T + N > cfg.max_position_embeddings && !json)
    std::fprintf(stderr, "note: prompt + gen exceeds max_position_embeddings (%lld)\n",
                 static_cast<long long>(cfg.max_position_embeddings));

  double read_bw = 0; // the limit: the best probe pass of the whole run (5 now, one per step)
  for (int i = 0; i < 5; ++i)
    read_bw = std::max(read_bw, session.bandwidth_pass());
  double matmul_rate = 0; // the prefill's limit where the backend has a probe: best of 5 passes
  if (session.matmul_pass)
    for (int i = 0; i < 5; ++i)
      matmul_rate = std::max(matmul_rate, session.matmul_pass());
  std::vector<std::int32_t> slots;
  for (int s = 0; s < B; ++s)
    slots.push_back(model.acquire());
  fast_rng rng(7);
  std::vector<std::int64_t> ids(std::size_t(B * T));
  for (auto& id : ids)
    id = std::int64_t(rng.next() % std::uint64_t(cfg.vocab_size));

  using clock = std::chrono::steady_clock;
  const auto p0 = clock::now();
  std::vector<std::int64_t> cu(std::size_t(B + 1));
  for (long long b = 0; b <= B; ++b)
    cu[std::size_t(b)] = b * T;
  std::vector<float> logits = model.prefill(slots, ids, cu, logits_for::last_position);
  model.synchronize();
  const double prefill_s = std::chrono::duration<double>(clock::now() - p0).count();

  std::vector<std::int64_t> next(static_cast<std::size_t>(B));
  const index_t V = cfg.vocab_size;
  auto argmax = [&](const std::vector<float>& l) {
    for (long long b = 0; b < B; ++b) {
      const float* row = l.data() + b * V;
      next[std::size_t(b)] = std::int64_t(std::max_element(row, row + V) - row);
    }
  };
  argmax(logits);
  // Each step is timed and followed by one probe pass: on a shared machine the load changes
  // within seconds, so the paired ratio (step against the bandwidth measured right after it) is
  // the one that compares like with like. The probe passes are not part of decode_seconds.
  std::vector<double> step_s, paired;
  double decode_s = 0;
  const double weight_bytes = double(decode_weight_bytes(weights));
  call_profile* const prof = session.profile.get(); // the decode steps only
  if (prof) prof->clear();
  for (long long step = 0; step < N; ++step) {
    if (prof) prof->record(true);
    const auto s0 = clock::now();
    next = model.decode_greedy(slots, next); // the argmax is taken on the backend
    const double s = std::chrono::duration<double>(clock::now() - s0).count();
    if (prof) prof->record(false);
    decode_s += s;
    step_s.push_back(s);
    const double pass_bw = session.bandwidth_pass();
    paired.push_back(weight_bytes / s / pass_bw);
    read_bw = std::max(read_bw, pass_bw); // the limit: the best pass of the whole run
  }

  const double prefill_tps = double(B * T) / prefill_s;
  const double steps_ps = double(N) / decode_s;
  const double decode_tps = double(B) * steps_ps;
  const double ratio = weight_bytes * steps_ps / read_bw;
  const double best_step = *std::min_element(step_s.begin(), step_s.end());
  const double ratio_best = weight_bytes / best_step / read_bw;
  const double ratio_paired = median(paired);
  // Prefill FLOPs: 2 x parameters per token (the parameters every token multiplies: the weights a
  // decode step reads), against the matrix-product probe.
  const double params = weight_bytes / double(size_of(dt == "f32" ? dtype::f32 : dtype::bf16));
  const double prefill_flops = 2.0 * params * prefill_tps;
  if (json) {
    nlohmann::json out = {{"geometry", g.name},
                          {"layers", cfg.n_layer},
                          {"dtype", dt},
                          {"weights", placement_name(weights.placement())},
                          {"backend", model.backend_name()},
                          {"backend_detail", session.description},
                          {"limit", session.bandwidth_name},
                          {"batch", B},
                          {"prompt", T},
                          {"gen", N},
                          {"prefill_seconds", prefill_s},
                          {"decode_seconds", decode_s},
                          {"prefill_tokens_per_s", prefill_tps},
                          {"decode_tokens_per_s", decode_tps},
                          {"decode_steps_per_s", steps_ps},
                          {"weight_bytes", weight_bytes},
                          {"read_bandwidth_bytes_per_s", read_bw},
                          {"decode_limit_ratio", ratio},
                          {"decode_best_step_seconds", best_step},
                          {"decode_limit_ratio_best_step", ratio_best},
                          {"decode_limit_ratio_paired_median", ratio_paired},
                          {"load_average_1min", load_average()},
                          {"quant", a.get("weights", "stored")},
                          {"launch", a.get("launch", "overlapped")}};
    if (prof) {
      out["profile"] = nlohmann::json::array();
      for (const auto& r : prof->rows())
        out["profile"].push_back({{"call", r.name},
                                  {"calls", r.calls},
                                  {"seconds", r.seconds},
                                  {"share_of_decode", r.seconds / decode_s}});
    }
    if (matmul_rate > 0) {
      out["matmul_limit"] = session.matmul_name;
      out["matmul_flops_per_s"] = matmul_rate;
      out["prefill_flops_per_s"] = prefill_flops;
      out["prefill_matmul_ratio"] = prefill_flops / matmul_rate;
    }
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("%s (%lld layers, %s weights %s), backend %s, %s, batch %lld\n", g.name.c_str(),
                static_cast<long long>(cfg.n_layer), dt.c_str(),
                weights.placement() == weight_placement::mapped ? "read from the file mapping"
                                                                : "copied into memory",
                model.backend_name().c_str(), session.description.c_str(), B);
    std::printf("prefill: %lld x %lld tokens in %.3f s: %.1f tokens/s\n", B, T, prefill_s,
                prefill_tps);
    std::printf("decode:  %lld steps in %.3f s: %.2f tokens/s (%.2f steps/s)\n", N, decode_s,
                decode_tps, steps_ps);
    std::printf("weights read per step: %.3f GB; %s (same run): %.1f GB/s\n", weight_bytes / 1e9,
                session.bandwidth_name.c_str(), read_bw / 1e9);
    std::printf("decode_limit_ratio = weight bytes x steps/s / %s = %.3f\n",
                session.bandwidth_name.c_str(), ratio);
    std::printf("best step: %.3f s, ratio %.3f; median of (step against the probe pass right "
                "after it): %.3f; load average %.2f\n",
                best_step, ratio_best, ratio_paired, load_average());
    if (matmul_rate > 0)
      std::printf("prefill: %.1f TFLOP/s (2 x parameters per token) = %.3f of the %s, %.1f "
                  "TFLOP/s (same run)\n",
                  prefill_flops / 1e12, prefill_flops / matmul_rate, session.matmul_name.c_str(),
                  matmul_rate / 1e12);
    if (prof) {
      std::printf("decode steps' parallel calls (--profile), the most time first:\n");
      std::printf("%10s %8s %7s  %s\n", "seconds", "calls", "share", "call");
      for (const auto& r : prof->rows())
        std::printf("%10.4f %8llu %6.1f%%  %s\n", r.seconds,
                    static_cast<unsigned long long>(r.calls), 100.0 * r.seconds / decode_s,
                    r.name.c_str());
    }
  }
  return 0;
}

} // namespace rodimus::cli
