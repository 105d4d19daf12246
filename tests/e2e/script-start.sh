# Sourced by the e2e scripts called as `SCRIPT COLDSCAN FIXTURES WORKDIR`: checks the arguments, sets
# coldscan, fixtures and work from them, and leaves WORKDIR empty.
if [[ $# -ne 3 ]]; then
    echo "usage: $0 COLDSCAN FIXTURES WORKDIR" >&2
    exit 2
fi
coldscan=$1
fixtures=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
