// rodimus generate (not built yet: owned by the issue that implements it).
#include "cli.hpp"

namespace rodimus::cli {
int run_generate(int, char**) { throw error("'generate' is not implemented yet"); }
}  // namespace rodimus::cli
