#!/usr/bin/env bash
# Re-derives RELIABILITY.md from a test run: the survival, hostile-conditions
# and fuzz tests print `RELIABILITY <case> <figures>` lines; this collects
# them into a table under the promises they check.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(cargo test --locked --test it -- survive:: hostile:: fuzz:: fleet:: --nocapture --test-threads 2 2>&1) || {
  echo "$out" | tail -40; echo "reliability tests failed" >&2; exit 1; }
{
  echo "# Reliability"
  echo
  echo "What a run promises under hostile conditions, and the figures of the tests that check each promise."
  echo "Produced by \`scripts/reliability.sh\` from a run of \`tests/it/survive.rs\`, \`tests/it/hostile.rs\`,"
  echo "\`tests/it/fleet.rs\` and \`tests/it/fuzz.rs\` on $(date -u +%Y-%m-%d) ($(id -u | sed 's/^0$/as root: tmpfs and chown cases ran/;s/^[1-9][0-9]*$/not as root: tmpfs and chown cases skipped/'))."
  echo "Re-run it to re-check."
  echo
  echo "## Promises"
  echo
  echo "1. **No second side effect.** No second admin, organization or pool after any crash or fault; at most one"
  echo "   SMTP test mail and one Twilio SMS per change: those requests are never repeated once they may have"
  echo "   reached TFE, their intent is saved first, and a lost answer is settled by reading TFE back."
  echo "2. **The admin token is never lost.** Room for it is claimed and fsynced before the one-time POST; a full"
  echo "   disk is found before anything is sent (exit 2); if token_file still cannot be written, the token is kept in"
  echo "   \`<state dir>/admin-token.rescue\` (0600) and the rerun moves it into place."
  echo "3. **No secret is printed.** One redactor stands in front of every output (text, JSON, errors, warnings,"
  echo "   a command's stderr): every secret the run knows becomes \`[redacted]\`, also when TFE echoes it."
  echo "4. **Files are safe.** The lock is opened without following links or blocking; modes change through"
  echo "   descriptors; state dirs and token files owned by others or writable by others are refused (StrictModes);"
  echo "   loose token files are tightened to 0600 with a warning; every input read is capped."
  echo "5. **Time is bounded.** Every request ends within \`[tfe] request_deadline\` (2 minutes), retries included;"
  echo "   \`[iact] command\` runs in its own process group, killed at \`command_timeout\` with whatever it started;"
  echo "   plain HTTP on an https:// address fails at once."
  echo "6. **Exits are honest.** Environment errors are exit 2 (not retried by systemd) with nothing sent; a closed"
  echo "   stdout or stderr never aborts; SIGTERM/SIGINT end with \`finished\` and exit 143/130, state consistent."
  echo "7. **Bad input is refused cleanly.** Damaged or foreign state, odd secret shapes (\`[\"X\"]\`), zero"
  echo "   durations, random configs and bytes: a clear error naming the key or file, never a panic."
  echo "8. **Many nodes act as one.** With \`[store]\`, N nodes at once or one after another: one admin, one of"
  echo "   everything, one test mail; mutating requests do not grow with N; a replacement sends nothing; a node killed"
  echo "   at any point delays the others by at most \`[store] wait\`."
  echo
  echo "## Figures"
  echo
  echo "| case | figures |"
  echo "| --- | --- |"
  echo "$out" | grep '^RELIABILITY ' | sort | sed -E 's/^RELIABILITY ([^ ]+) (.*)$/| \1 | \2 |/'
  if echo "$out" | grep -q '^SKIPPED'; then
    echo
    echo "Skipped here:"
    echo
    echo "$out" | grep '^SKIPPED' | sort -u | sed 's/^SKIPPED /- /'
  fi
  echo
  echo "## What each case does"
  echo
  echo "- **crash-points**: for every mutating request of a full run (counted from an uninterrupted run), the client is"
  echo "  SIGKILLed (a) when the request reached TFE, before it acted; (b) after TFE acted, with the answer lost;"
  echo "  (c) after the answer, at the next request. A rerun without faults exits 0 with the same final state"
  echo "  (one admin, one organization, exactly one SMTP test mail); (b) at the admin POST exits 4 naming"
  echo "  \`[admin] token\`, and that way out converges."
  echo "- **fault-seeds**: 25% of requests fail at random (502, 503, 504, 500, 429 with X-RateLimit-Reset, dropped"
  echo "  connections, 2 s stalls; the once-only requests meet only faults that say TFE did not act); every seed"
  echo "  converges to the uninterrupted run's state and one test mail."
  echo "- **stalled-request**: a stalled one-time POST ends in a timeout error naming \`request_timeout\`, sent once."
  echo "- **damaged-state**: truncated, garbage, foreign-format and other-TFE state files are refused by \`run\` and"
  echo "  \`plan\` with exit 2, naming the file and \`reset\`; nothing is sent or changed."
  echo "- **hostile-slow-smtp**: TFE answers the SMTP PATCH after 6 s, the client times out at 5 s; run and rerun."
  echo "- **hostile-lost-smtp-answer**: the relay outlasts the read-back too; the run fails without repeating, the"
  echo "  rerun finds its intent and reads back."
  echo "- **hostile-lost-twilio-answer**: TFE sends the verification SMS, its answer is lost; run and rerun."
  echo "- **hostile-full-disk-before-post** / **hostile-disk-full-during-post**: token_file on a 64 KiB tmpfs, full"
  echo "  before the run / filled while TFE handles the admin POST."
  echo "- **hostile-token-file-unwritable-after-post**: the claim beside token_file vanishes during the POST."
  echo "- **hostile-planted-lock**: \`lock -> victim\` symlink and a FIFO named \`lock\`."
  echo "- **hostile-unsafe-state-dir**: mode 0777, owned by uid 65534, read-only mount (or 0500 when not root)."
  echo "- **hostile-loose-token-file**: token_file at 0644, and owned by another user."
  echo "- **hostile-echoed-secrets**: \`tfe-sim --fault ...:echo=422\` answers with the whole request (body, query,"
  echo "  Authorization) in its error, on the admin POST and the SMTP PATCH, in text and JSON."
  echo "- **hostile-iact-command** / **hostile-iact-stderr**: \`sh -c \"sleep 300 & echo IACT\"\`; a command that"
  echo "  never ends; a failing command that prints the IACT on stderr."
  echo "- **hostile-hanging-get**: every attempt of one GET stalls past \`request_timeout\`."
  echo "- **hostile-oversized-inputs**: a 2 MiB config, \`{ file = \"/dev/zero\" }\`, a 5 MiB state.json, a 100 KiB token file."
  echo "- **hostile-signals**, **hostile-closed-output**, **hostile-https-on-plain-port**, **hostile-config-shapes**:"
  echo "  as named."
  echo "- **fleet-file** / **fleet-etcd**: 4 nodes at once through \`scripts/store/file\` / a real etcd, then a"
  echo "  replacement with an empty state dir; mutating requests of the fleet, and last-done minus first-done."
  echo "- **fleet-killed-after-admin** / **fleet-killed-holding-duty**: a node SIGKILLed after creating the admin, or"
  echo "  while its duty's request was in flight; 4 more nodes finish, one of them after \`[store] wait\` (3 s)."
  echo "- **fuzz-***: 400 generated inputs each (random text as a config; random known keys over a valid config; random"
  echo "  durations; random bytes as state.json): none panics, every rejection is a clean error. Error bodies of"
  echo "  every shape never panic; valid durations parse exactly."
} > RELIABILITY.md
cat RELIABILITY.md | sed -n '/## Figures/,/## What/p'
