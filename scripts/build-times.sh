#!/usr/bin/env bash
# The first-build numbers the README quotes: `cargo build --release --locked` into an empty
# target directory (cold; crates already downloaded, as after one `cargo fetch`), then the
# rebuilds after touching the binary's code and the library's (warm).
#
#   scripts/build-times.sh [TARGET_DIR (a new temporary one)]
#
# Run it on an otherwise idle machine: every number is wall-clock time. Writes cargo's
# --timings report of the cold build (the per-crate chart) into TARGET_DIR/cargo-timings/.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-$(mktemp -d)}"
export CARGO_TARGET_DIR="$target"
cargo fetch --locked >/dev/null

timed() {
    local label="$1" start
    shift
    start=$(date +%s)
    "$@" >/dev/null 2>&1
    echo "$label: $(($(date +%s) - start)) s"
}

timed "cold release build ($(nproc) cores)" cargo build --release --locked --timings
touch src/cli/run.rs
timed "warm, after an edit of the binary (src/cli/)" cargo build --release --locked
touch src/lib.rs
timed "warm, after an edit of the library (src/lib.rs)" cargo build --release --locked
timed "warm, nothing changed" cargo build --release --locked
echo "per-crate timings: $target/cargo-timings/cargo-timing.html"
