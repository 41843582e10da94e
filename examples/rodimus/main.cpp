// `rodimus`: run Rodimus / Rodimus+ checkpoints from the command line.
// Errors print one line on stderr and exit with code 1; `rodimus <command> --help` prints the
// command's usage and exits 0.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "cli.hpp"

namespace {

struct subcommand {
  const char* name;
  int (*run)(int, char**);
  const char* help;
};

const subcommand subcommands[] = {
    {"generate", rodimus::cli::run_generate,
     "[--model DIR] (--prompt-ids 1,2,3 | --prompt TEXT | --chat TEXT [--system TEXT]) [-n N] "
     "[--temp T --top-k K --top-p P --seed S] [--ignore-eos] [--backend scalar|cpu|cuda] "
     "[--threads N] [--matmul exact|rounded] [--launch overlapped|serial] [--tuning "
     "gla=CxW,swska=RxK,swska_decode=K,gemv=policy|registers|streamed] "
     "[--weights stored|q8|q4] [--mmap] [--json]"},
    {"logits", rodimus::cli::run_logits,
     "--model DIR --input IN.safetensors --output OUT.safetensors [--mode forward|decode|split:P] "
     "[--backend scalar|cpu|cuda] [--threads N] [--matmul exact|rounded] [--launch "
     "overlapped|serial] [--tuning "
     "gla=CxW,swska=RxK,swska_decode=K,gemv=policy|registers|streamed] "
     "[--weights stored|q8|q4] "
     "[--mmap]"},
    {"inspect", rodimus::cli::run_inspect, "--model DIR"},
    {"quantize", rodimus::cli::run_quantize,
     "--model DIR --weights q8|q4 --out OUTDIR [--threads N] [--mmap]: save the weights quantised "
     "(docs/QUANT.md)"},
    {"tokenize", rodimus::cli::run_tokenize,
     "--tokenizer FILE --input IN.jsonl --output OUT.jsonl [--decode]"},
    {"bench", rodimus::cli::run_bench,
     "--geometry rodimus-1.4b|rodimus-plus-1.6b|rodimus-plus-4b [--layers N] [--batch B] [--prompt "
     "T] [--gen N] [--dtype f32|bf16] [--backend scalar|cpu|cuda] [--threads N] "
     "[--matmul exact|rounded] [--launch overlapped|serial] [--tuning "
     "gla=CxW,swska=RxK,swska_decode=K,gemv=policy|registers|streamed] "
     "[--weights stored|q8|q4] [--dir PATH] [--mmap] [--json]"},
    {"demo", rodimus::cli::run_demo,
     "[--seed S]: run every primitive on random data and print what it computed and how long it "
     "took"},
};

void usage(FILE* out) {
  std::fprintf(out, "usage: rodimus <command> [flags]\n\ncommands:\n");
  for (const auto& s : subcommands)
    std::fprintf(out, "  %-9s %s\n", s.name, s.help);
}

/// Print `s`'s usage on stdout (for --help).
void usage_of(const subcommand& s) { std::printf("usage: rodimus %s %s\n", s.name, s.help); }

/// Standard output must have taken everything written to it (printf buffers: a full disk shows
/// only at the flush). Returns false after saying why on stderr.
bool stdout_ok(const char* command) {
  errno = 0;
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return true;
  std::fprintf(stderr, "rodimus %s: error: standard output: write failed: %s\n", command,
               std::strerror(errno ? errno : EIO));
  return false;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 1 : stdout_ok("--help") ? 0 : 1;
  }
  for (const auto& s : subcommands) {
    if (std::strcmp(argv[1], s.name) != 0) continue;
    int rc = 1;
    try {
      rc = s.run(argc - 2, argv + 2);
    } catch (const rodimus::cli::help_requested&) {
      usage_of(s);
      rc = 0;
    } catch (const std::bad_alloc&) { // a size that passed every check and still did not fit
      std::fprintf(stderr,
                   "rodimus %s: error: out of memory (the request needs more memory than this "
                   "machine can give; try a smaller batch, prompt or model)\n",
                   s.name);
      return 1;
    } catch (const std::length_error& e) {
      std::fprintf(stderr, "rodimus %s: error: a size is too large for this machine (%s)\n", s.name,
                   e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rodimus %s: error: %s\n", s.name, e.what());
      return 1;
    }
    return stdout_ok(s.name) ? rc : 1;
  }
  std::fprintf(stderr, "rodimus: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 1;
}
