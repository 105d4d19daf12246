#!/usr/bin/env bash
# Installs every Debian 12 package coldscan builds, tests and demos with.
# Idempotent: packages already present are skipped, so re-running is cheap.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ninja-build clang-format
  libguestfs-dev libguestfs-tools libguestfs-xfs guestfs-tools qemu-utils
  libnbd-dev nbdkit libtsk-dev  # the direct path: qemu-nbd exports read with libnbd, parsed by The Sleuth Kit
  linux-image-amd64  # the appliance kernel: supermin needs one in /boot
  libclamav-dev clamav clamav-testfiles
  zlib1g-dev  # the signature catalogue unpacks ClamAV's .cvd/.cld containers
  libyara-dev yara
  libtbb-dev librocksdb-dev libcli11-dev catch2
  libssl-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libtomlplusplus-dev libcpp-httplib-dev  # the scan service: its config file and HTTP API
  libvirt-dev libxml2-dev  # the scan service: libvirt domains and their XML
  libseccomp-dev  # the engine workers' seccomp filter
  libpq-dev postgresql-15  # fleet mode: libpq; the tests start a throwaway PostgreSQL server (tests/fixtures/postgres-server.sh)
  gdisk fdisk e2fsprogs dosfstools btrfs-progs ntfs-3g lvm2 zip p7zip-full
  curl python3  # the e2e tests talk to the service with curl and check JSON with python
  strace  # tests/e2e/host-file-canary.sh: which files the qemu processes open
  mmdebstrap zstd gpg debian-archive-keyring  # tests/fixtures/make-real-os.sh: a real Debian 12 server's root filesystem, cached as .tar.zst
  clang-16 libclang-rt-16-dev llvm-16  # scripts/fuzz.sh: libFuzzer, and std::expected needs clang >= 16
  chromium  # tests/browser/: the web console's tests drive Debian's chromium with playwright-core
)
# Node.js and npm for playwright-core (console/package.json): Debian's, unless the machine has its own.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null; then
      echo "coldscan: these Debian packages are missing: ${missing[*]}" >&2
      echo "coldscan: run this script as root (or install sudo) so it can install them" >&2
      exit 1
    fi
    SUDO="sudo"
  fi
  echo "coldscan: installing ${#missing[@]} Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi

# playwright-core for the browser tests, at the version console/package-lock.json pins; it never downloads a
# browser (Debian's chromium above is the one it drives). The console's own files need no npm: the browser
# libraries it uses are vendored in console/static/vendor (scripts/vendor-console.sh).
if [[ ! -f "$(dirname "${BASH_SOURCE[0]}")/../console/node_modules/playwright-core/package.json" ]]; then
  echo "coldscan: npm ci in console/ (playwright-core for the browser tests)"
  (cd "$(dirname "${BASH_SOURCE[0]}")/../console" &&
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
