#!/usr/bin/env bash
# Installs the tansu Kafka-protocol broker used by the integration tests and CI.
#
# The binary is cached outside the clone (default ~/.cache/feedback-pipeline/tansu-<version>) and
# reused when its version matches, so repeated runs on one machine skip the ~10 minute build.
# Prints the path of the binary on stdout.
set -euo pipefail

TANSU_VERSION="${TANSU_VERSION:-0.6.0}"
TANSU_FEATURES="${TANSU_FEATURES:-dynostore,libsql}"
CACHE_ROOT="${FEEDBACK_PIPELINE_CACHE:-$HOME/.cache/feedback-pipeline}"
INSTALL_ROOT="$CACHE_ROOT/tansu-$TANSU_VERSION"
BIN="$INSTALL_ROOT/bin/tansu"

installed_version() {
    "$1" --version 2>/dev/null | awk '{print $NF}'
}

if [[ -x "$BIN" && "$(installed_version "$BIN")" == "$TANSU_VERSION" ]]; then
    echo "$BIN"
    exit 0
fi

echo "installing tansu $TANSU_VERSION (features: $TANSU_FEATURES) into $INSTALL_ROOT" >&2
# A private target dir keeps tansu's build out of the project's target/ and out of the clone.
CARGO_TARGET_DIR="$CACHE_ROOT/tansu-build" \
    cargo install tansu --version "$TANSU_VERSION" --features "$TANSU_FEATURES" \
    --locked --root "$INSTALL_ROOT" >&2
rm -rf "$CACHE_ROOT/tansu-build"

if [[ "$(installed_version "$BIN")" != "$TANSU_VERSION" ]]; then
    echo "tansu at $BIN does not report version $TANSU_VERSION: $("$BIN" --version 2>&1)" >&2
    exit 1
fi
echo "$BIN"
