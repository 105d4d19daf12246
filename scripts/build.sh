#!/usr/bin/env bash
# build.sh: installs the Debian 12 packages coldscan needs (scripts/install-deps.sh, which uses sudo when
# not run as root) and builds everything with CMake + Ninja into ./build (RelWithDebInfo).
# Environment: COLDSCAN_BUILD_DIR (default build), CMAKE_BUILD_TYPE (default RelWithDebInfo),
# COLDSCAN_CMAKE_ARGS (extra configure arguments, e.g. -DCOLDSCAN_SANITIZE=ON), COLDSCAN_BUILD_TARGETS (what to
# build, default everything).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/install-deps.sh

build_dir=${COLDSCAN_BUILD_DIR:-build}
# shellcheck disable=SC2086 # COLDSCAN_CMAKE_ARGS is a list of arguments
if [[ -f $build_dir/CMakeCache.txt ]]; then
    cmake -S . -B "$build_dir" ${COLDSCAN_CMAKE_ARGS:-}
else
    cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" \
        ${COLDSCAN_CMAKE_ARGS:-}
fi
targets=()
for target in ${COLDSCAN_BUILD_TARGETS:-}; do
    targets+=(--target "$target")
done
cmake --build "$build_dir" -j"$(nproc)" "${targets[@]}"
