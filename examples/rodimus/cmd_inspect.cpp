// rodimus inspect (not built yet: owned by the issue that implements it).
#include "cli.hpp"

namespace rodimus::cli {
int run_inspect(int, char**) { throw error("'inspect' is not implemented yet"); }
}  // namespace rodimus::cli
