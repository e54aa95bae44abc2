#!/usr/bin/env bash
# Re-derives RELIABILITY.md from a test run: the survival, hostile-conditions
# and fuzz tests print `RELIABILITY <case> <figures>` lines; this collects
# them into a table under the promises they check.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(cargo test --locked --test it -- survive:: hostile:: fuzz:: fleet:: fleet_field:: secrets:: faults:: --nocapture --test-threads 2 2>&1) || {
  echo "$out" | tail -40; echo "reliability tests failed" >&2; exit 1; }
{
  echo "# Reliability"
  echo
  echo "What a run promises under hostile conditions, and the figures of the tests that check each promise."
  echo "Produced by \`scripts/reliability.sh\` from a run of \`tests/it/survive.rs\`, \`tests/it/hostile.rs\`,"
  echo "\`tests/it/fleet.rs\`, \`tests/it/fleet_field.rs\`, \`tests/it/secrets.rs\`, \`tests/it/faults.rs\` and \`tests/it/fuzz.rs\` on $(date -u +%Y-%m-%d) ($(id -u | sed 's/^0$/as root: tmpfs and chown cases ran/;s/^[1-9][0-9]*$/not as root: tmpfs and chown cases skipped/'))."
  echo "Re-run it to re-check."
  echo
  echo "## Promises"
  echo
  echo "1. **No second side effect.** No second admin, organization or pool after any crash or fault; at most one"
  echo "   SMTP test mail and one Twilio SMS per change: those requests are never repeated once they may have"
  echo "   reached TFE, their intent is saved first, and a lost answer is settled by reading TFE back."
  echo "2. **No token is lost.** Every token the run writes (the admin token, its rotation, the organization and"
  echo "   owners team tokens) goes through one lifecycle (\`src/tokens/\`): room is claimed and fsynced before"
  echo "   the POST that mints it, so a full disk is found before anything is sent (exit 2) and a disk that fills"
  echo "   during the POST still keeps the token; a file that cannot be written leaves \`<state dir>/<step>.rescue\`"
  echo "   (0600), moved into place by the rerun; a service token's intent is saved before its POST, so a crash"
  echo "   between TFE's answer and the file is re-minted by the rerun (nobody held the lost one), and a fleet"
  echo "   whose holder died there is delayed by at most \`[store] wait\`."
  echo "3. **No secret is printed.** One redactor stands in front of every output (text, JSON, errors, warnings,"
  echo "   a command's stderr): every secret the run knows becomes \`[redacted]\`, also when TFE echoes it, in its"
  echo "   raw, JSON-escaped (once, twice, ASCII-only) and percent-encoded forms. JSON events are scrubbed before"
  echo "   they are serialized, and long bodies before they are cut."
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
  echo "   everything, one test mail per applied change (also after a rollback, a failing \`put\`, a takeover);"
  echo "   mutating requests do not grow with N; a replacement sends nothing; a node killed at any point delays the"
  echo "   others by at most \`[store] wait\`; two TFEs sharing a store never mix; helpers get no secret; key names"
  echo "   confirm no guessed secret cheaply; 64 nodes under TFE's rate limit all finish."
  echo "9. **Every token file works at the end.** \`verify-tokens\` reads each token file from disk (never through a"
  echo "   link) and runs again after a failure or when a file changed; no run exits 0 while a token file the config"
  echo "   names is refused. A dead token this node minted is re-minted; one it did not mint fails every run with the"
  echo "   remedy. Lifetimes are computed on TFE's clock (its \`Date\`), so a host clock hours fast or days slow"
  echo "   still yields tokens inside their policy; token-minting POSTs are retried on 500/502/504."
  echo "10. **Secrets only while they are used.** Once a step is done, its secret may be removed: the run warns and"
  echo "   sends nothing for it; a step that still needs an absent secret stops the run before anything is sent."
  echo
  echo "## Figures"
  echo
  echo "| case | figures |"
  echo "| --- | --- |"
  echo "$out" | grep '^RELIABILITY ' | grep -v '^RELIABILITY fault ' | sort | sed -E 's/^RELIABILITY ([^ ]+) (.*)$/| \1 | \2 |/'
  if echo "$out" | grep -q '^SKIPPED'; then
    echo
    echo "Skipped here:"
    echo
    echo "$out" | grep '^SKIPPED' | sort -u | sed 's/^SKIPPED /- /'
  fi
  echo
  echo "## One fault at each request"
  echo
  echo "\`tests/it/faults.rs\`: a full run (with the organization and owners team tokens) meets one transient fault at"
  echo "one of its mutating requests, each request in turn and each fault in turn, answered before TFE processed"
  echo "the request, as a load balancer or a restarting TFE does. *absorbed*: exit 0 with one admin, one organization,"
  echo "one pool, one test mail, and every token file working. The one case that is not: TFE's API docs give a 500 on"
  echo "the SMTP PATCH for an SMTP server error during the test mail, which no re-send mends; TFE is read back first,"
  echo "and when it does not hold the settings the run exits 1 naming both parties with TFE's own words, and the"
  echo "rerun converges with one test mail."
  echo
  echo "| request | 500 | 503 | 429 | dropped connection |"
  echo "| --- | --- | --- | --- | --- |"
  echo "$out" | grep '^RELIABILITY fault ' | sed -E 's/^RELIABILITY fault //' | awk '
    { n = split($0, w, " "); act = w[n-1]; sub(/:$/, "", act); res = w[n];
      req = w[1]; for (i = 2; i < n - 1; i++) req = req " " w[i];
      gsub(/(team|user)-[A-Za-z0-9]+/, ":id", req);
      if (!(req in seen)) { seen[req] = 1; order[++k] = req }
      a = (act ~ /^429/) ? "429" : act; sub(/^exit-/, "exit ", res); cell[req, a] = res }
    END { for (i = 1; i <= k; i++) { r = order[i];
      printf "| `%s` | %s | %s | %s | %s |\n", r, cell[r, "500"], cell[r, "503"], cell[r, "429"], cell[r, "drop"] } }'
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
  echo "- **fleet-file** / **fleet-etcd** / **fleet-aws-ssm**: 4 nodes at once through \`scripts/store/file\` / a real etcd /"
  echo "  \`scripts/store/aws-ssm\` with the real AWS CLI against an SSM emulator (moto), then a"
  echo "  replacement with an empty state dir; mutating requests of the fleet, and last-done minus first-done."
  echo "- **fleet-killed-after-admin** / **fleet-killed-holding-duty**: a node SIGKILLed after creating the admin, or"
  echo "  while its duty's request was in flight; 4 more nodes finish, one of them after \`[store] wait\` (3 s)."
  echo "- **secrets-cut-echo**: a proxy's plain-text page quotes the admin POST with a hostile password (\`\"\`, \`\\\\\`,"
  echo "  tab, newline, \`%\`, \`+\`, \`&\`, space, non-ASCII) on every offset around the 200-character cut."
  echo "- **secrets-clock-fast** / **secrets-clock-slow**: the client alone under libfaketime, 3 hours fast / 29 days slow."
  echo "- **secrets-mint-retry**: a 500, 502 and 504 on the rotation, org and team token POSTs."
  echo "- **secrets-kill-after-mint**: SIGKILL after TFE answered each token POST, before the file; the rerun."
  echo "- **hostile-disk-full-during-mint**: the token files' tmpfs fills while TFE answers each token POST."
  echo "- **fleet-holder-killed-after-mint**: the duty holder dies after the org, team or rotation token POST; 4 nodes converge."
  echo "- **fleet-rollback** / **fleet-failing-done-put**: 8 nodes, a config A→B→A / a helper whose \`put done-smtp-*\`"
  echo "  fails, through the file helper and a real etcd: test mails counted against applied changes."
  echo "- **fleet-two-tfes-one-store**, **fleet-helper-env**, **fleet-key-names-vs-guesses**: two TFEs sharing a store;"
  echo "  a helper and an IACT command that dump their environment; guesses tried against every key name."
  echo "- **fleet-64-rate-limited**: 64 nodes at once against \`tfe-sim --rate-limit\` (30 requests per second per user)."
  echo "- **hostile-fleet-holder-disk-full-during-mint**: a fleet holder's token file system fills during its org token POST."
  echo "- **fleet-given-admin-token-rotated**: a node adopts the rotated admin token and keeps using it after a change."
  echo "- **fuzz-***: 400 generated inputs each (random text as a config; random known keys over a valid config; random"
  echo "  durations; random bytes as state.json): none panics, every rejection is a clean error. Error bodies of"
  echo "  every shape never panic; valid durations parse exactly."
} > RELIABILITY.md
cat RELIABILITY.md | sed -n '/## Figures/,/## What/p'
