#!/usr/bin/env bash
# Downloads the Debian packages mlseg's build needs besides LibTorch and ITK into DIR, for a machine
# without apt or internet (a GPU machine with pip's LibTorch): header libraries, zlib, libdeflate,
# GoogleTest and Google Benchmark. No root needed; nothing is installed here.
#   bash scripts/fetch-build-deps.sh deps          # then, on the other machine:
#   MLSEG_DEPS_DIR=deps bash scripts/build.sh ...  # unpacks DIR into a prefix and builds against it
# DIR gets the .deb files and manifest.txt (package=version, one a line). Idempotent: a package
# whose candidate version is already in DIR is not downloaded again; older versions are removed.
set -euo pipefail

die() { echo "fetch-build-deps: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: scripts/fetch-build-deps.sh DIR (the folder that receives the .deb files)"
command -v apt-get > /dev/null && command -v apt-cache > /dev/null ||
  die "apt-get not found: run this on a Debian/Ubuntu machine with package lists, then copy DIR over"

# What the CMake files look for (CMakeLists.txt, src/, tests/, bench/), by package:
#   nlohmann-json3-dev  find_package(nlohmann_json 3)      header-only
#   libcli11-dev        find_package(CLI11)                header-only
#   zlib1g-dev          find_package(ZLIB)                 linked statically (libz.a)
#   libdeflate-dev      find_path/find_library(deflate)    linked statically (libdeflate.a)
#   libgtest-dev        find_package(GTest), tests only    static libraries (no gmock is used)
#   libbenchmark-dev    find_package(benchmark), bench/    CMake config; the library itself is in
#   libbenchmark1debian                                    the runtime package (no .a is shipped)
# fmt is not used by the code; ITK is left out (MLSEG_WITH_ITK=OFF reads and writes NIfTI itself).
PACKAGES=(nlohmann-json3-dev libcli11-dev zlib1g-dev libdeflate-dev libgtest-dev libbenchmark-dev libbenchmark1debian)

dir="$1"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

# apt-get download as root warns that the _apt user cannot write DIR; download as root then.
apt_options=()
[ "$(id -u)" -eq 0 ] && apt_options=(-o APT::Sandbox::User=root)

manifest=()
downloaded=0
for package in "${PACKAGES[@]}"; do
  version="$(apt-cache show --no-all-versions "$package" 2> /dev/null | sed -n 's/^Version: //p' | head -n 1)"
  [ -n "$version" ] || die "apt knows no package '$package'; run 'apt-get update' (as root) and retry"
  # apt-get download names files NAME_VERSION_ARCH.deb with ':' (epoch) written as %3a.
  file_version="${version//:/%3a}"
  current=("$dir/${package}_${file_version}"_*.deb)
  if [ ! -f "${current[0]}" ]; then
    rm -f "$dir/${package}"_*.deb
    echo "fetch-build-deps: downloading $package $version"
    (cd "$dir" && apt-get download -q "${apt_options[@]}" "$package=$version") > /dev/null ||
      die "apt-get download $package=$version failed (no network or no package lists?)"
    downloaded=$((downloaded + 1))
  fi
  manifest+=("$package=$version")
done

# build.sh unpacks every .deb in DIR: drop packages this list no longer names.
for file in "$dir"/*.deb; do
  name="$(basename "$file")"
  name="${name%%_*}"
  if [[ " ${PACKAGES[*]} " != *" $name "* ]]; then
    echo "fetch-build-deps: removing $(basename "$file") (not needed any more)"
    rm -f "$file"
  fi
done

printf '%s\n' "${manifest[@]}" > "$dir/manifest.txt.new"
mv "$dir/manifest.txt.new" "$dir/manifest.txt"
echo "fetch-build-deps: $dir holds ${#PACKAGES[@]} packages ($downloaded downloaded now), $(du -sh "$dir" | cut -f1)" \
  "in all; manifest.txt lists them"
