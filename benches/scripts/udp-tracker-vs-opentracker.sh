#!/usr/bin/env bash
# UDP announces per second on one core (BEP 15): minibit-tracker and
# opentracker (Debian's whitelist build) in the same run, alternated, each
# pinned to CPU 1 with the load generator (`udp-announce-load`) on CPU 0.
# Loopback only. Usage: benches/scripts/udp-tracker-vs-opentracker.sh [ROUNDS]
# (needs `cargo build --release -p minibit-tracker -p minibit-benches` and
# the opentracker package).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
bin=target/release
command -v opentracker >/dev/null || { echo "error: needs the opentracker package (apt-get install opentracker)" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
# opentracker drops root for nobody, who must read its whitelist: the
# info-hashes udp-announce-load uses (byte 0 < 100 swarms, byte 1 = socket
# number < 4, the rest zero).
chmod 755 "$work"
python3 -c '
for a in range(100):
    for b in range(4):
        print((bytes([a, b]) + bytes(18)).hex())' > "$work/whitelist"
echo "access.whitelist $work/whitelist" > "$work/opentracker.conf"
chmod 644 "$work"/*
for i in $(seq "$rounds"); do
    taskset -c 1 "$bin/minibit-tracker" -q --bind 127.0.0.1:16969 &
    pid=$!; sleep 1
    echo -n "minibit-tracker round $i: "
    taskset -c 0 "$bin/udp-announce-load" --tracker 127.0.0.1:16969 --seconds 10
    kill "$pid"; wait "$pid" 2>/dev/null || true
    (cd "$work" && exec taskset -c 1 opentracker -i 127.0.0.1 -p 16970 -P 16970 -f "$work/opentracker.conf") &
    pid=$!; sleep 1
    echo -n "opentracker round $i: "
    taskset -c 0 "$bin/udp-announce-load" --tracker 127.0.0.1:16970 --seconds 10
    kill "$pid"; wait "$pid" 2>/dev/null || true
done
