#!/usr/bin/env bash
# install-browser-deps.sh: installs what the web console's browser tests (tests/browser/) need on Debian 12:
# Debian's chromium (Playwright drives /usr/bin/chromium; it never downloads a browser of its own), Debian's
# nodejs and npm when node/npm are missing, and playwright-core from console/package-lock.json
# (`npm ci --ignore-scripts`, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1) when console/node_modules lacks it.
# Idempotent and quiet when everything is there. Uses sudo when not run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed" || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

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

if [[ ! -f console/node_modules/playwright-core/package.json ]]; then
    echo "coldscan: npm ci in console/ (playwright-core for the browser tests)"
    (cd console && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
