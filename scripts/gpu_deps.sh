#!/usr/bin/env bash
# Make .deps/: the Debian 12 packages the project builds with, unpacked, for the GPU machine (which
# has CMake, ninja and CUDA but none of them). The GPU check then configures the project's own
# CMake with CMAKE_PREFIX_PATH=.deps/root/usr, so the H200 builds exactly the targets CI builds.
# Run here (needs apt-get download, no root); carry .deps to the device (device tool: carry=[".deps"]).
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(libeigen3-dev libxsimd-dev xtl-dev doctest-dev libbenchmark-dev libbenchmark1debian
      nlohmann-json3-dev libonig-dev libonig5)
rm -rf .deps
mkdir -p .deps/debs .deps/root
(cd .deps/debs && apt-get download "${pkgs[@]}" >/dev/null)
for deb in .deps/debs/*.deb; do dpkg-deb -x "$deb" .deps/root; done
rm -rf .deps/debs .deps/root/usr/share/doc .deps/root/usr/share/man
echo "$(du -sh .deps | cut -f1) in .deps: ${pkgs[*]}"
