// rodimus inspect --model DIR
//
// Prints the configuration with every default resolved and the derived sizes, then checks the
// checkpoint against it and prints the parameter count, the stored dtypes, the state bytes per
// sequence and the validation result (and, for a checkpoint saved quantised, its tensors by
// format). Exits 1 when the checkpoint does not match (the problems are listed on stderr).
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

#include "cli.hpp"
#include "rodimus/io/config.hpp"
#include "rodimus/model/weights.hpp"

namespace rodimus::cli {

namespace {

// Sizes are computed in long double: a configuration may imply more parameters or state bytes than
// an int64 holds (n_layer in the millions), and inspect must print them, not a wrapped number.
// long double holds every integer below 2^64 exactly; beyond that the printed digits are rounded.

/// `x` as a whole number ("123456789012345678901").
std::string whole(long double x) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "%.0Lf", x);
  return buf;
}

std::string mib(long double bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, " (%.2Lf MiB)", bytes / (1024.0L * 1024.0L));
  return whole(bytes) + " bytes" + buf;
}

/// The parameters of the tensors expected_tensors lists for `c`.
long double tensor_elements(const model_config& c) {
  long double n = 0;
  for (const auto& t : expected_tensors(c)) {
    long double k = 1;
    for (auto d : t.shape)
      k *= (long double)d;
    n += k;
  }
  return n;
}

/// parameter_count(c) without overflow, and without listing every layer's tensors: the global
/// tensors (a model of no layers) plus n_layer times one layer's.
long double parameter_count_checked(const model_config& c) {
  model_config none = c, one = c;
  none.n_layer = 0;
  one.n_layer = 1;
  const long double global = tensor_elements(none);
  return global + (long double)c.n_layer * (tensor_elements(one) - global);
}

/// state_pool::bytes_per_sequence(c) without overflow: per layer the conv window (E x d_conv), the
/// GLA state (N x E) and, for Rodimus+, the ring of attn_ring_size() keys and values; f32 each;
/// plus the position counter.
long double state_bytes_checked(const model_config& c) {
  const long double E = (long double)c.d_inner();
  long double per_layer = E * (long double)c.d_conv + (long double)c.mem_size * E;
  if (c.is_plus())
    per_layer += (long double)c.attn_ring_size() * (long double)(c.heads_k() + c.heads_v()) *
                 (long double)c.head_dim();
  return (long double)c.n_layer * per_layer * sizeof(float) + sizeof(std::int64_t);
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
  const args a(argc, argv, {"model"}, {});
  const std::string dir = a.require("model");
  const model_config cfg = io::load_config(dir);
  std::printf("model %s\n", dir.c_str());
  print_config(cfg);
  std::printf("parameters               %s (from the configuration)\n",
              whole(parameter_count_checked(cfg)).c_str());
  std::printf("state per sequence       %s\n", mib(state_bytes_checked(cfg)).c_str());
  try {
    const model_weights w = model_weights::load(dir, weight_placement::mapped);
    std::printf("stored dtypes           ");
    for (const auto& [t, n] : w.dtype_counts())
      std::printf(" %s: %lld", to_string(t), (long long)n);
    std::printf("\n");
    if (!w.stored_quantised().empty()) { // a checkpoint saved by `rodimus quantize`
      std::map<std::string, int> formats;
      for (const auto& [name, q] : w.stored_quantised())
        ++formats[to_string(q.format)];
      std::printf("stored quantised         %zu tensors (", w.stored_quantised().size());
      const char* sep = "";
      for (const auto& [format, n] : formats) {
        std::printf("%s%s: %d", sep, format.c_str(), n);
        sep = ", ";
      }
      std::printf(")\n");
    }
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
