// The released geometries decode on every backend (scalar, cpu), including the cases whose
// attention ring is long: the decode workspace of the cpu backend holds one score per ring position
// per query head and sequence, so it grows with the window (or, unbounded, with
// max_position_embeddings) and with the batch. Each model keeps the geometry's head counts,
// head dimension 32, window and capacity, with a small d_model, one or two layers and a small
// vocabulary (random weights, docs/MODEL.md §8 init, model/init.hpp, as `rodimus bench` writes
// them); decoding from empty states (no prefill first, the save-then-decode flow) must give the
// same logits on the cpu backend as on the scalar reference.
#include "support/temp_dir.hpp"
#include "support/test_support.hpp"

#include <nlohmann/json.hpp>

#include "../examples/rodimus/geometry.hpp"
#include "rodimus/backend/cpu/all.hpp"
#include "rodimus/model/init.hpp"
#include "rodimus/runtime/runner.hpp"

using namespace rodimus;

namespace {

/// `name`'s geometry with head dimension 32 (d_model = 32 x the query heads, or 256 without
/// attention), `layers` layers and a vocabulary of 256; `edit` changes the rest.
nlohmann::json small_geometry(const std::string& name, int layers) {
  nlohmann::json c = cli::geometry_by_name(name, layers).config;
  c["d_model"] = c.contains("attn_cfg") ? 32 * c["attn_cfg"]["num_heads"].get<int>() : 256;
  c["vocab_size"] = 256;
  c["bos_token_id"] = 1;
  c["eos_token_id"] = 2;
  return c;
}

/// `steps` decode steps of `batch` sequences from empty states; the logits of every step.
template <class Backend>
std::vector<float> decode_from_empty(model_runner<Backend>& runner, int batch, int steps) {
  state_pool pool = runner.make_pool(batch);
  std::vector<std::int32_t> slots;
  for (int b = 0; b < batch; ++b)
    slots.push_back(pool.acquire());
  std::vector<float> all;
  for (int s = 0; s < steps; ++s) {
    std::vector<std::int64_t> ids;
    for (int b = 0; b < batch; ++b)
      ids.push_back((7 * b + 13 * s + 3) % 256);
    const std::vector<float> l = runner.decode(pool, slots, ids);
    all.insert(all.end(), l.begin(), l.end());
  }
  return all;
}

void check_decode_on_every_backend(const nlohmann::json& config, int batch, int steps) {
  INFO(config.dump());
  test::temp_dir dir;
  write_random_checkpoint(dir.str(), config.dump(2) + "\n", dtype::f32);
  const model_weights w = model_weights::load(dir.str());
  model_runner<scalar> reference(w);
  thread_pool threads(2);
  model_runner<cpu<>> simd(w, cpu<>{&threads});
  const std::vector<float> want = decode_from_empty(reference, batch, steps);
  std::vector<float> got;
  try {
    got = decode_from_empty(simd, batch, steps);
  } catch (const error& e) {
    FAIL("cpu backend: " << std::string(e.what()));
  }
  test::check_close(got, want, 1e-4, 1.0, "cpu vs scalar decode");
}

} // namespace

TEST_CASE("released geometries decode 32 sequences from empty states on every backend") {
  for (const char* name : {"rodimus-1.4b", "rodimus-plus-1.6b", "rodimus-plus-4b"}) {
    INFO(name);
    check_decode_on_every_backend(small_geometry(name, 1), 32, 2);
  }
}

TEST_CASE("a window of 81920 (a ring of 40961 positions) decodes on every backend") {
  nlohmann::json c = small_geometry("rodimus-plus-1.6b", 1);
  c["attn_cfg"]["num_heads"] = 2;
  c["attn_cfg"]["num_heads_v"] = 2;
  c["d_model"] = 64;
  c["attn_cfg"]["window_size"] = 81920;
  c["max_position_embeddings"] = 131072;
  check_decode_on_every_backend(c, 2, 2);
}

TEST_CASE("an unbounded window with max_position_embeddings 32768 decodes on every backend") {
  nlohmann::json c = small_geometry("rodimus-plus-1.6b", 2);
  c["attn_cfg"]["num_heads"] = 2;
  c["attn_cfg"]["num_heads_v"] = 2;
  c["d_model"] = 64;
  c["attn_cfg"].erase("window_size");
  c["max_position_embeddings"] = 32768;
  check_decode_on_every_backend(c, 2, 2);
}
