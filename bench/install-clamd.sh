#!/usr/bin/env bash
# install-clamd.sh: clamd and clamdscan, a peer of the benchmarks only, installed on demand; their system
# services (Debian's default configuration, competing for the cores) are stopped and disabled.
set -euo pipefail
if command -v clamd >/dev/null && command -v clamdscan >/dev/null; then
    exit 0
fi
sudo_cmd=()
[[ $(id -u) == 0 ]] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends clamav-daemon clamdscan </dev/null
"${sudo_cmd[@]}" systemctl disable --now clamav-daemon clamav-freshclam 2>/dev/null || true
