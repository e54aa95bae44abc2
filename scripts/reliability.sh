#!/usr/bin/env bash
# Re-derives RELIABILITY.md from a test run: the survival and fuzz tests
# print `RELIABILITY <case> <figures>` lines; this collects them into a table.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(cargo test --locked --test it -- survive:: fuzz:: --nocapture --test-threads 2 2>&1) || {
  echo "$out" | tail -40; echo "reliability tests failed" >&2; exit 1; }
{
  echo "# Reliability"
  echo
  echo "Produced by \`scripts/reliability.sh\` from a run of the survival and fuzz tests"
  echo "(\`tests/it/survive.rs\`, \`tests/it/fuzz.rs\`) on $(date -u +%Y-%m-%d). Re-run it to re-check."
  echo
  echo "| case | figures |"
  echo "| --- | --- |"
  echo "$out" | grep '^RELIABILITY ' | sort | sed -E 's/^RELIABILITY ([^ ]+ ?[^ =]*) (.*)$/| \1 | \2 |/'
  echo
  echo "What each case asserts:"
  echo
  echo "- **crash-points**: for every mutating request of a full run (counted from an uninterrupted run), the client is"
  echo "  SIGKILLed (a) when the request reached TFE, before it acted; (b) after TFE acted, with the answer lost;"
  echo "  (c) after the answer, at the next request. A rerun without faults exits 0 with the same final state"
  echo "  (one admin, one organization, at most one extra SMTP test mail); (b) at the admin POST exits 4 naming"
  echo "  \`[admin] token\`, and that way out converges."
  echo "- **fault-seeds**: 25% of requests fail at random (502, 503, 504, 500 on GETs, 429 with X-RateLimit-Reset,"
  echo "  dropped connections, 2 s stalls); every seed converges to the uninterrupted run's state and one test mail."
  echo "- **stalled-request**: a stalled one-time POST ends in a timeout error naming \`request_timeout\`, sent once."
  echo "- **damaged-state**: truncated, garbage, foreign-format and other-TFE state files are refused by \`run\` and"
  echo "  \`plan\` with exit 2, naming the file and \`reset\`; nothing is sent or changed."
  echo "- **fuzz-***: 400 generated inputs each (random text as a config; random known keys over a valid config; random"
  echo "  durations; random bytes as state.json): none panics, every rejection is a clean error. Error bodies of"
  echo "  every shape never panic; valid durations parse exactly."
} > RELIABILITY.md
cat RELIABILITY.md
