// rodimus demo (not built yet: owned by the issue that implements it).
#include "cli.hpp"

namespace rodimus::cli {
int run_demo(int, char**) { throw error("'demo' is not implemented yet"); }
}  // namespace rodimus::cli
