#!/usr/bin/env bash
# The test suite: formatting, lints, then every test (unit, golden, and integration tests
# against a real moto server that the tests start on loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/moto.sh install
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
