#!/usr/bin/env bash
# Installs gnuplot without X (Debian's gnuplot-nox) for bench/plots.py when no gnuplot is on the PATH, then
# prints the PNG terminal bench/plots.py will use: pngcairo (antialiased, Debian's gnuplot-nox has it) or,
# failing that, the libgd png terminal. Exit status 1 when no gnuplot with a PNG terminal can be had.
set -euo pipefail

if ! command -v gnuplot >/dev/null; then
    sudo_cmd=()
    if [[ $(id -u) -ne 0 ]]; then
        if ! command -v sudo >/dev/null; then
            echo "install-plot-deps: gnuplot is missing; run this as root (or install sudo) to install gnuplot-nox" >&2
            exit 1
        fi
        sudo_cmd=(sudo)
    fi
    echo "install-plot-deps: installing gnuplot-nox" >&2
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        gnuplot-nox >&2
fi

terminals=$(gnuplot -e 'set terminal' 2>&1 </dev/null || true)
if grep -qw pngcairo <<<"$terminals"; then
    echo pngcairo
elif grep -qw png <<<"$terminals"; then
    echo png
else
    echo "install-plot-deps: $(command -v gnuplot) has neither the pngcairo nor the png terminal" >&2
    exit 1
fi
