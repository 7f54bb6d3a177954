#!/usr/bin/env bash
# minibit quick start: build, seed a file from a tracker, download it with
# three peers at once, check every copy, stop everything.
#
#   scripts/demo.sh [FILE]      (default: 64 MiB of random bytes made on the spot)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building (release)"
cargo build --release --quiet -p minibit-tracker -p minibit-peer
bin="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release"

work="$(mktemp -d)"
tracker_pid=""
cleanup() {
    local status=$?
    if [ -n "$tracker_pid" ]; then
        # Ctrl-C is the tracker's clean stop (its seeder announces `stopped`).
        kill -INT "$tracker_pid" 2>/dev/null || true
        wait "$tracker_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

if [ $# -ge 1 ]; then
    source_file="$(realpath "$1")"
else
    source_file="$work/demo-64MiB.bin"
    echo "== making $source_file (64 MiB of random bytes)"
    head -c $((64 * 1024 * 1024)) /dev/urandom > "$source_file"
fi
name="$(basename "$source_file")"

echo "== starting minibit-tracker, seeding $name"
"$bin/minibit-tracker" --bind 127.0.0.1:0 -q "$source_file" > "$work/tracker.out" 2> "$work/tracker.err" &
tracker_pid=$!
for _ in $(seq 1 600); do
    grep -q '^seeding ' "$work/tracker.out" 2>/dev/null && break
    kill -0 "$tracker_pid" 2>/dev/null || { cat "$work/tracker.err"; exit 1; }
    sleep 0.1
done
cat "$work/tracker.out"
grep -q '^seeding ' "$work/tracker.out" || { echo "the tracker did not start seeding"; cat "$work/tracker.err"; exit 1; }
url="$(sed -n 's/^tracker listening on \(http:[^ ]*\).*/\1/p' "$work/tracker.out")"

echo "== three peers download $name from $url"
pids=()
for i in 1 2 3; do
    { "$bin/minibit-peer" --exit-on-complete --bind 127.0.0.1 -o "$work/peer$i" "$url" "$name" 2>&1 || echo "FAILED"; } | sed "s/^/[peer $i] /" &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

echo "== checking copies"
want="$(sha256sum < "$source_file" | cut -d' ' -f1)"
for i in 1 2 3; do
    got="$(sha256sum < "$work/peer$i/$name" | cut -d' ' -f1)"
    if [ "$got" = "$want" ]; then echo "peer $i: $name sha256 $got OK"; else echo "peer $i: MISMATCH"; exit 1; fi
done
echo "== done: all three copies are identical to the source"
