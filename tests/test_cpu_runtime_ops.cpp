// The small primitives that keep the model runner on the backend (embedding, channel_gate,
// scale_add, gather_rows, argmax_rows) on cpu<Arch> (with and without a thread pool) against the
// scalar reference: the shared bodies in tests/cases/<name>_cases.hpp (tolerances explained there),
// and the scalar reference itself against the formulas written out in those files.
#include "test_cpu_support.hpp"

#include "cases/argmax_rows_cases.hpp"
#include "cases/channel_gate_cases.hpp"
#include "cases/embedding_cases.hpp"
#include "cases/gather_rows_cases.hpp"
#include "cases/scale_add_cases.hpp"

#include "rodimus/backend/cpu/argmax_rows.hpp"
#include "rodimus/backend/cpu/channel_gate.hpp"
#include "rodimus/backend/cpu/embedding.hpp"
#include "rodimus/backend/cpu/gather_rows.hpp"
#include "rodimus/backend/cpu/scale_add.hpp"

using namespace rodimus;

namespace {

template <class Arch> cpu<Arch> backend(bool pool) {
  return cpu<Arch>{pool ? &test::test_pool() : nullptr};
}

} // namespace

TEST_CASE(
    "scalar embedding, channel_gate, scale_add, gather_rows and argmax_rows match their formulas") {
  test::check_embedding_formula();
  test::check_channel_gate_formula();
  test::check_scale_add_formula();
  test::check_gather_rows_formula();
  test::check_argmax_rows_formula();
}

TEST_CASE("scalar runtime ops pass the shared cases (bad arguments included)") {
  test::check_embedding_all(scalar{});
  test::check_channel_gate_all(scalar{});
  test::check_scale_add_all(scalar{});
  test::check_gather_rows_all(scalar{});
  test::check_argmax_rows_all(scalar{});
}

TEST_CASE_TEMPLATE(
    "cpu embedding, channel_gate, scale_add, gather_rows and argmax_rows match the scalar "
    "reference",
    Arch, RODIMUS_TEST_CPU_ARCHS) {
  if (!test::arch_runs_here<Arch>()) return;
  for (bool pool : {false, true}) {
    CAPTURE(pool);
    test::check_embedding_all(backend<Arch>(pool));
    test::check_channel_gate_all(backend<Arch>(pool));
    test::check_scale_add_all(backend<Arch>(pool));
    test::check_gather_rows_all(backend<Arch>(pool));
    test::check_argmax_rows_all(backend<Arch>(pool));
  }
}
