#!/usr/bin/env bash
# test.sh [CTEST ARGS...]: build.sh, then every test (unit + end-to-end) with CTest on 2 jobs.
# The end-to-end tests build small real disk images first (tests/fixtures) and launch libguestfs appliances;
# CTest lets at most one appliance run at a time. Extra arguments go to ctest, e.g. `-L unit` or
# `-R e2e.check.ntfs`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/build.sh

# coldscan must pick TCG by itself when KVM is unusable (nested clouds): never force it for the product.
unset LIBGUESTFS_BACKEND_SETTINGS
ctest --test-dir "${COLDSCAN_BUILD_DIR:-build}" --output-on-failure -j2 "$@"
