#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the Debian packages the
# tests drive when they are missing (as root), then runs
# `cargo test --workspace --locked`. Extra arguments go to `cargo test`
# (e.g. `scripts/test.sh -p minibit-peer`). `.ci/run` calls this script.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real torrent tools for the metainfo cross-checks (transmission-show,
# transmission-create, mktorrent), ffmpeg/ffprobe for the e2e video, and the
# real clients of the interop tests (transmission-daemon, aria2c, libtorrent)
# and a UDP tracker of theirs (opentracker).
packages=(transmission-cli mktorrent transmission-daemon aria2 python3-libtorrent ffmpeg opentracker)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    install=(apt-get install -y --no-install-recommends "${missing[@]}")
    if [[ $(id -u) -ne 0 ]]; then
        echo "error: the tests need the Debian packages ${missing[*]}: run as root: apt-get update && ${install[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    "${install[@]}" -qq
fi

exec cargo test --workspace --locked "$@"
