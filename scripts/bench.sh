#!/usr/bin/env bash
# Benchmarks: readiness lag, full-run time and requests, rerun, footprint,
# side by side with the bash + curl + jq way. Writes BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
command -v jq >/dev/null || need+=(jq)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi
cargo build --release --locked --quiet
python3 scripts/bench.py
