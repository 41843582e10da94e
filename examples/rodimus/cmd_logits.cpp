// rodimus logits (not built yet: owned by the issue that implements it).
#include "cli.hpp"

namespace rodimus::cli {
int run_logits(int, char**) { throw error("'logits' is not implemented yet"); }
}  // namespace rodimus::cli
