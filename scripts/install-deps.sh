#!/usr/bin/env bash
# Installs everything mlseg's build, tests and benchmarks need, from Debian bookworm.
# Idempotent: packages already present are skipped; `apt-get update` runs only when
# something is missing and the package lists are absent or older than a day.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libtorch-dev
  libgloo-dev  # the headers of c10d's Gloo backend (distributed training; libtorch links libgloo0)
  libinsighttoolkit5-dev
  nlohmann-json3-dev
  libcli11-dev
  libfmt-dev
  libgtest-dev libgmock-dev
  libbenchmark-dev
  libopenblas0-openmp
  zlib1g-dev
  libdeflate-dev
  libpng-dev  # io/png_check.cpp (ITK reads PNG through the same libpng)
  clang libclang-rt-14-dev  # scripts/fuzz.sh: clang++ with libFuzzer and the sanitizer runtimes (tests/fuzz)
  chromium  # tests only: renders the `mlseg report` page headless (tests/report/report_browser_test.cpp)
  # tests/parity and bench/parity only: nnU-Net v2 from ../shared/peers runs on Debian's python3-torch
  # (the same libtorch_cpu as libtorch-dev); the rest is what its imports need (../shared/peers/setup.sh)
  python3-torch python3-numpy python3-scipy python3-skimage python3-nibabel python3-pandas python3-sklearn
  python3-threadpoolctl python3-tqdm python3-requests python3-matplotlib python3-seaborn python3-imageio
  python3-tifffile
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

echo "install-deps: installing ${missing[*]}"
lists=/var/lib/apt/lists
if [ -z "$(find "$lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
  $SUDO apt-get update
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends "${missing[@]}"
