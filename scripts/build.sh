#!/usr/bin/env bash
# Configures and builds mlseg into build/ (Release, Ninja). Extra arguments go to CMake.
#   MLSEG_BUILD_DIR=DIR   build folder (default build)
#   MLSEG_BUILD_JOBS=N    parallel jobs (default: all cores)
#   MLSEG_BUILD_TARGETS   targets to build, space-separated (default: all)
#   MLSEG_DEPS_DIR=DIR    a folder from scripts/fetch-build-deps.sh, for a machine without apt: its .deb
#                         files are unpacked into BUILD_DIR/deps-prefix and the build uses them, the
#                         LibTorch of python3's torch (when it has one) and no ITK
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${MLSEG_BUILD_DIR:-build}"
JOBS="${MLSEG_BUILD_JOBS:-$(nproc)}"

die() { echo "build: $*" >&2; exit 1; }

# Unpacks one .deb ($1) into the folder $2: dpkg -x where dpkg exists, else Python's standard
# library (a .deb is an ar archive holding data.tar.*), so a machine without dpkg works too.
# MLSEG_DEPS_UNPACKER=python forces the fallback (to test it).
unpack_deb() {
  if command -v dpkg > /dev/null && [ "${MLSEG_DEPS_UNPACKER:-}" != python ]; then
    dpkg -x "$1" "$2"
    return
  fi
  command -v python3 > /dev/null || die "unpacking $1 needs dpkg or python3; neither is installed"
  python3 - "$1" "$2" << 'PY'
import io, sys, tarfile
deb, dest = sys.argv[1], sys.argv[2]
with open(deb, 'rb') as f:
    blob = f.read()
if not blob.startswith(b'!<arch>\n'):
    sys.exit(f'build: {deb} is not a .deb (no ar header); fetch it again with scripts/fetch-build-deps.sh')
offset, data = 8, None
while offset + 60 <= len(blob):
    header = blob[offset:offset + 60]
    name = header[:16].decode().strip().rstrip('/')
    size = int(header[48:58].decode().strip())
    if name.startswith('data.tar'):
        data = (name, blob[offset + 60:offset + 60 + size])
        break
    offset += 60 + size + (size % 2)
if data is None:
    sys.exit(f'build: {deb} holds no data.tar member')
if data[0].endswith('.zst'):
    sys.exit(f'build: {deb} uses zstd ({data[0]}), which Python cannot read; install dpkg or zstd')
with tarfile.open(fileobj=io.BytesIO(data[1]), mode='r:*') as tar:
    if hasattr(tarfile, 'fully_trusted_filter'):  # Python >= 3.12: keep links as dpkg does
        tar.extractall(dest, filter='fully_trusted')
    else:
        tar.extractall(dest)
PY
}

cmake_args=()
if [ -n "${MLSEG_DEPS_DIR:-}" ]; then
  [ -f "$MLSEG_DEPS_DIR/manifest.txt" ] ||
    die "MLSEG_DEPS_DIR=$MLSEG_DEPS_DIR has no manifest.txt; fill it with: bash scripts/fetch-build-deps.sh $MLSEG_DEPS_DIR"
  mkdir -p "$BUILD_DIR"
  prefix="$(cd "$BUILD_DIR" && pwd)/deps-prefix"
  # Unpack once per manifest: an unchanged manifest means the prefix is current.
  if ! cmp -s "$MLSEG_DEPS_DIR/manifest.txt" "$prefix/manifest.txt"; then
    rm -rf "$prefix"
    mkdir -p "$prefix"
    for deb in "$MLSEG_DEPS_DIR"/*.deb; do
      [ -f "$deb" ] || die "MLSEG_DEPS_DIR=$MLSEG_DEPS_DIR holds no .deb files; run scripts/fetch-build-deps.sh $MLSEG_DEPS_DIR"
      unpack_deb "$deb" "$prefix"
    done
    # Absolute links (zlib1g-dev: libz.so -> /lib/...) must point into the prefix, not at this machine.
    while IFS= read -r link; do
      ln -sfn "$prefix$(readlink "$link")" "$link"
    done < <(find "$prefix" -type l -lname '/*')
    cp "$MLSEG_DEPS_DIR/manifest.txt" "$prefix/manifest.txt"
    echo "build: unpacked $(grep -c . "$prefix/manifest.txt") packages from $MLSEG_DEPS_DIR into $prefix"
  fi
  libdir="$(find "$prefix/usr/lib" -maxdepth 1 -type d -name '*-linux-gnu*' | head -n 1)"
  [ -n "$libdir" ] || die "$prefix/usr/lib has no multiarch folder (x86_64-linux-gnu); are the .deb files for this machine?"

  # LibTorch: python3's torch (pip or conda, CUDA or not) when there is one; else CMake's defaults.
  python="${MLSEG_PYTHON:-python3}"
  torch_prefix="$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2> /dev/null || true)"
  if [ -n "$torch_prefix" ]; then
    echo "build: LibTorch from $python's torch: $torch_prefix"
  else
    echo "build: $python has no torch module; CMake looks for LibTorch in its default places" \
      "(give -DCMAKE_PREFIX_PATH=/path/to/libtorch to choose one)"
  fi
  # The prefix comes after LibTorch and before the system: CMake's config search sees usr/ (with
  # lib/<arch>/cmake and share/cmake), find_path/find_library see usr/include and the multiarch lib dir.
  cmake_args+=(
    "-DCMAKE_PREFIX_PATH=${torch_prefix:+$torch_prefix;}$prefix/usr;$libdir/cmake;$prefix/usr/share/cmake"
    "-DCMAKE_INCLUDE_PATH=$prefix/usr/include"
    "-DCMAKE_LIBRARY_PATH=$libdir"
    # libbenchmark.so lives in the prefix: the executables find it through their RPATH.
    "-DCMAKE_BUILD_RPATH=$libdir"
    -DMLSEG_WITH_ITK=OFF
  )
  # Static zlib and libdeflate where the packages ship them: nothing to find at run time.
  if [ -f "$libdir/libz.a" ]; then
    cmake_args+=("-DZLIB_INCLUDE_DIR=$prefix/usr/include" "-DZLIB_LIBRARY=$libdir/libz.a")
  fi
  if [ -f "$libdir/libdeflate.a" ]; then
    cmake_args+=("-DLIBDEFLATE_INCLUDE_DIR=$prefix/usr/include" "-DLIBDEFLATE_LIBRARY=$libdir/libdeflate.a")
  fi
fi

cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${cmake_args[@]+"${cmake_args[@]}"} "$@"
# MLSEG_BUILD_TARGETS: space-separated targets (default: all).
targets=()
for target in ${MLSEG_BUILD_TARGETS:-}; do targets+=(--target "$target"); done
cmake --build "$BUILD_DIR" --parallel "$JOBS" ${targets[@]+"${targets[@]}"}
