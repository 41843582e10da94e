// rodimus inspect --model DIR
//
// Prints the configuration with every default resolved and the derived sizes, then checks the
// checkpoint against it and prints the parameter count, the stored dtypes, the state bytes per
// sequence and the validation result. Exits 1 when the checkpoint does not match (the problems are
// listed on stderr).
#include <cstdio>
#include <string>

#include "cli.hpp"
#include "rodimus/io/config.hpp"
#include "rodimus/model/state.hpp"
#include "rodimus/model/weights.hpp"

namespace rodimus::cli {

namespace {

std::string mib(std::size_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%zu bytes (%.2f MiB)", bytes, double(bytes) / (1024.0 * 1024.0));
  return buf;
}

void print_config(const model_config& c) {
  std::printf("configuration (defaults resolved)\n");
  std::printf("  block_type               %s\n", to_string(c.block_type));
  std::printf("  d_model                  %lld\n", (long long)c.d_model);
  std::printf("  n_layer                  %lld\n", (long long)c.n_layer);
  std::printf("  vocab_size               %lld\n", (long long)c.vocab_size);
  std::printf("  norm_epsilon             %g\n", c.norm_epsilon);
  std::printf("  tie_word_embeddings      %s\n", c.tie_word_embeddings ? "true" : "false");
  std::printf("  use_scale_embedding      %s (embed scale %g)\n",
              c.use_scale_embedding ? "true" : "false", double(c.embed_scale()));
  std::printf("  use_norm_embedding       %s\n", c.use_norm_embedding ? "true" : "false");
  std::printf("  mixer: mem_size N        %lld\n", (long long)c.mem_size);
  std::printf("  mixer: expand_ratio      %g -> d_inner E = %lld\n", c.expand_ratio,
              (long long)c.d_inner());
  std::printf("  mixer: input_gate_low_rank %s -> R = %lld\n",
              c.input_gate_low_rank > 0 ? "given" : "auto", (long long)c.low_rank());
  std::printf("  mixer: d_conv            %lld\n", (long long)c.d_conv);
  std::printf("  mixer: normalize_epsilon %g\n", c.normalize_epsilon);
  if (c.is_plus()) {
    std::printf("  attn: heads H / Hk / Hv  %lld / %lld / %lld, head dim %lld\n",
                (long long)c.heads(), (long long)c.heads_k(), (long long)c.heads_v(),
                (long long)c.head_dim());
    if (c.window_left() >= 0)
      std::printf("  attn: window_size        %lld -> window_left %lld (%lld keys per query)\n",
                  (long long)c.window_size, (long long)c.window_left(),
                  (long long)c.window_left() + 1);
    else
      std::printf(
          "  attn: window             unbounded causal (capacity max_position_embeddings = %lld)\n",
          (long long)c.max_position_embeddings);
    std::printf("  attn: rotary             %lld channels, base %g\n", (long long)c.rotary_dim(),
                c.rotary_emb_base);
    std::printf("  ffn: expand_ratio        %g -> F = %lld\n", c.ffn_expand_ratio,
                (long long)c.ffn_hidden());
  }
}

} // namespace

int run_inspect(int argc, char** argv) {
  const args a(argc, argv, {});
  a.allow_only({"model"});
  const std::string dir = a.require("model");
  const model_config cfg = io::load_config(dir);
  std::printf("model %s\n", dir.c_str());
  print_config(cfg);
  std::printf("parameters               %lld (from the configuration)\n",
              (long long)parameter_count(cfg));
  std::printf("state per sequence       %s\n", mib(state_pool<>::bytes_per_sequence(cfg)).c_str());
  try {
    const model_weights w = model_weights::load(dir, weight_placement::mapped);
    std::printf("stored dtypes           ");
    for (const auto& [t, n] : w.dtype_counts())
      std::printf(" %s: %lld", to_string(t), (long long)n);
    std::printf("\n");
    std::printf("weights                  %zu tensors\n", w.checkpoint().size());
    std::printf("validation               ok\n");
  } catch (const error& e) {
    std::printf("validation               FAILED\n");
    std::fprintf(stderr, "rodimus inspect: %s\n", e.what());
    return 1;
  }
  return 0;
}

} // namespace rodimus::cli
