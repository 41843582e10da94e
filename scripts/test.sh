#!/usr/bin/env bash
# Second command of the quick start, and what CI runs: build and run the whole test suite.
#  1. g++ 12, Release, -Wall -Wextra -Werror: every test, every header alone, the tool, the examples,
#     the benchmarks (built, and a short smoke run) and, where nvcc exists, the CUDA translation units
#     for sm_90 (the CUDA tests skip without a GPU).
#  2. the installed package used by a separate consumer project (find_package and pkg-config).
#  3. clang 14, -Werror, AddressSanitizer + UndefinedBehaviorSanitizer: every CPU test again.
#  4. clang 14 libFuzzer: 60-second smoke run of each parser fuzzer.
#  5. clang-format check.
#  6. the PyTorch operators (examples/torch) against float64 references (skipped without torch).
# Environment: RODIMUS_TEST_FAST=1 skips stages 3-4 (for quick local iteration only).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
rodimus_install_deps
jobs=$(nproc)
start=$(date +%s)
stage() { echo; echo "== [$(( $(date +%s) - start ))s] $*"; }
failures=0
run_ctest() {  # dir, extra args...
  local dir=$1; shift
  if ! ctest --test-dir "$dir" --output-on-failure -j "$jobs" "$@"; then failures=$((failures + 1)); fi
}

stage "1. g++ Release -Werror: build everything"
cmake -S . -B build/gcc -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ \
  -DRODIMUS_WERROR=ON -DRODIMUS_BUILD_BENCH=ON >/dev/null
cmake --build build/gcc -j "$jobs"
stage "1. g++ Release: tests"
run_ctest build/gcc
stage "1. examples and benchmark smoke run"
for ex in build/gcc/bin/example_*; do [ -x "$ex" ] && { echo "-- $ex"; "$ex" >/dev/null || failures=$((failures + 1)); }; done
for b in build/gcc/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "-- $b (smoke)"
  "$b" --benchmark_min_time=0.001 --benchmark_filter='.*/(1|16|64)(/|$).*|^[^/]*$' >/dev/null 2>&1 \
    || { echo "benchmark $b failed"; failures=$((failures + 1)); }
done

stage "2. install and consume the package"
rm -rf build/prefix build/consumer
cmake --install build/gcc --prefix "$PWD/build/prefix" >/dev/null
cmake -S tests/consumer -B build/consumer -G Ninja -DCMAKE_PREFIX_PATH="$PWD/build/prefix" >/dev/null
cmake --build build/consumer -j "$jobs"
build/consumer/consumer || failures=$((failures + 1))
PKG_CONFIG_PATH="$PWD/build/prefix/share/pkgconfig" \
  g++ -march=native tests/consumer/consumer.cpp $(PKG_CONFIG_PATH="$PWD/build/prefix/share/pkgconfig" pkg-config --cflags --libs rodimus) -o build/consumer/consumer_pc
build/consumer/consumer_pc || failures=$((failures + 1))

if [ "${RODIMUS_TEST_FAST:-0}" != 1 ]; then
  stage "3. clang 14 -Werror + ASan + UBSan: build"
  # -O1 with line tables only: quick to compile, readable sanitizer reports.
  cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only" \
    -DCMAKE_CXX_COMPILER=clang++-14 \
    -DRODIMUS_WERROR=ON -DRODIMUS_SANITIZE=ON -DRODIMUS_CUDA=OFF -DRODIMUS_BUILD_BENCH=OFF \
    -DRODIMUS_FUZZ=ON -DRODIMUS_HEADER_CHECK=OFF >/dev/null
  cmake --build build/asan -j "$jobs"
  stage "3. clang 14 ASan + UBSan: tests"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 run_ctest build/asan -LE slow

  stage "4. libFuzzer smoke runs (60 s each)"
  for f in build/asan/tests/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    mkdir -p "build/asan/corpus/$name"
    if ! "$f" -max_total_time=60 -print_final_stats=0 "build/asan/corpus/$name" tests/fuzz/seeds/"${name#fuzz_}" \
         > "build/asan/$name.log" 2>&1; then
      tail -40 "build/asan/$name.log"; failures=$((failures + 1))
    else
      echo "-- $name: $(grep -c '' "build/asan/$name.log") log lines, no crash"
    fi
  done
fi

stage "5. clang-format"
if command -v clang-format >/dev/null; then
  files=$(git ls-files '*.hpp' '*.cpp' '*.cuh' '*.cu' 2>/dev/null || true)
  if [ -n "$files" ] && ! clang-format --dry-run --Werror $files 2>/dev/null; then
    echo "clang-format: files differ from .clang-format (run: clang-format -i \$(git ls-files '*.hpp' '*.cpp' '*.cuh' '*.cu'))"
    failures=$((failures + 1))
  fi
fi

stage "6. PyTorch operators (examples/torch) against float64 references"
# Debian's torch 1.13 (python3-torch, libtorch-dev); the extension build takes about a minute.
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  if ! RODIMUS_TORCH_BUILD="$PWD/build/torch_ext" MAX_JOBS="$jobs" \
       /usr/bin/python3 -m unittest discover -s tests/torch -p 'test_*.py' -v; then
    failures=$((failures + 1))
  fi
else
  echo "skipped: /usr/bin/python3 has no torch (apt-get install python3-torch libtorch-dev)"
fi

stage "done: $failures failing stage(s)"
[ "$failures" -eq 0 ]
