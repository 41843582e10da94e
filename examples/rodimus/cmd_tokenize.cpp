// rodimus tokenize (not built yet: owned by the issue that implements it).
#include "cli.hpp"

namespace rodimus::cli {
int run_tokenize(int, char**) { throw error("'tokenize' is not implemented yet"); }
}  // namespace rodimus::cli
