# Sourced by setup.sh and test.sh: make sure the Debian 12 packages we build with are present.
# As root, missing packages are installed with apt-get; otherwise the exact command is printed.
RODIMUS_PACKAGES=(g++ cmake ninja-build pkg-config clang-14 libclang-rt-14-dev clang-format
  python3-matplotlib libeigen3-dev libxsimd-dev xtl-dev doctest-dev libbenchmark-dev nlohmann-json3-dev libonig-dev
  python3-torch libtorch-dev) # the PyTorch operators (examples/torch), tested by /usr/bin/python3

rodimus_install_deps() {
  local missing=()
  for p in "${RODIMUS_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing packages; run as root:"
    echo "  sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
}
