#!/usr/bin/env bash
# The demo: build, start tfe-sim on 127.0.0.1:18800 (booting for 2 s), run
# `tfe-bootstrap run --config config/demo.toml`, show what the simulated TFE
# now holds, run again (nothing to do), stop the simulator.
set -euo pipefail
cd "$(dirname "$0")/.."

# Say what is missing before anything else.
missing=()
for tool in cargo python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "demo: missing ${missing[*]}: install Rust (https://rustup.rs) and Python 3, then rerun" >&2
  exit 2
fi
echo "Building tfe-bootstrap and tfe-sim (release; the first build takes a few minutes)..."
cargo build --release --locked
bin=target/release
state=$(mktemp -d)
trap 'kill "$sim_pid" 2>/dev/null || true; rm -rf "$state"' EXIT

"$bin/tfe-sim" --listen 127.0.0.1:18800 --ready-after 2s --iact-subnets 127.0.0.0/8 >"$state/sim.url" &
sim_pid=$!
for _ in $(seq 1 100); do [ -s "$state/sim.url" ] && break; sleep 0.05; done
echo "tfe-sim listening on $(head -1 "$state/sim.url") (ready in 2 s)"
echo

export TFE_ADMIN_PASSWORD="demo-admin-password-1"
export SMTP_PASSWORD="demo-smtp-password"
"$bin/tfe-bootstrap" run --config config/demo.toml --state-dir "$state/bootstrap"

echo
echo "What the simulated TFE holds now:"
python3 -c '
import json, urllib.request
s = json.load(urllib.request.urlopen("http://127.0.0.1:18800/_sim/state"))
o = s["organizations"][0]
print("  admin users:       ", [u["username"] for u in s["users"]])
print("  api rate limit:    ", s["settings"]["general"]["api-rate-limit"])
print("  smtp:              ", s["settings"]["smtp"]["host"], s["settings"]["smtp"]["port"], "test mails:", s["test-mails"])
print("  organization:      ", o["name"], "mode", o["default-execution-mode"], "pool", o["default-agent-pool"])
print("  token TTLs (days): ", {k: v // 86400000 for k, v in o["token-ttl-policies"].items()})
'
echo
echo "Second run (nothing to do, no request sent):"
"$bin/tfe-bootstrap" run --config config/demo.toml --state-dir "$state/bootstrap"
