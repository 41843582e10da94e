// rodimus bench (not built yet: owned by the issue that implements it).
#include "cli.hpp"

namespace rodimus::cli {
int run_bench(int, char**) { throw error("'bench' is not implemented yet"); }
}  // namespace rodimus::cli
