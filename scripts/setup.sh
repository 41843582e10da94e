#!/usr/bin/env bash
# First command of the quick start: install what is missing, build in Release, run the main job
# (the shipped tiny-coder model continues a Python prompt; `rodimus demo` runs every primitive).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
rodimus_install_deps
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DRODIMUS_BUILD_BENCH=ON > build.log 2>&1 \
  || { cat build.log; exit 1; }
cmake --build build/release --target rodimus_tool -j "$(nproc)" >> build.log 2>&1 || { tail -50 build.log; exit 1; }
echo "== built build/release/bin/rodimus"
exec build/release/bin/rodimus generate
