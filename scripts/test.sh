#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (the
# real binaries against tfe-sim, over HTTP and TLS), and the cross-check of
# the simulator's wire format with the official Python SDK.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
scripts/pytfe-check.sh
