#!/usr/bin/env bash
# Independent-client check: tfe-bootstrap configures tfe-sim with
# config/demo.toml plus a user TTL of 30 days, a support address and an
# organization token, all with max-TTL enforced; then the official TFE Python
# SDK (pytfe, from PyPI, in a virtualenv) reads the results back with the
# admin token and the organization token the run left behind.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/pytfe-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pytfe' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'pytfe==1.5.0'
fi
cargo build --quiet --bins

work=$(mktemp -d)
trap 'kill "$sim_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
target/debug/tfe-sim --iact-subnets 127.0.0.0/8 >"$work/url" &
sim_pid=$!
for _ in $(seq 1 200); do [ -s "$work/url" ] && break; sleep 0.05; done
url=$(head -1 "$work/url")

sed -e "s#http://127.0.0.1:18800#$url#" -e 's/^user = "2y"/user = "30d"/' \
  -e 's/^\[organization\]$/[customization]\nsupport_email_address = "help@example.com"\nlogin_help = "Ask #platform"\nfooter = "Internal use only"\nerror = "Something broke: ask #platform"\nnew_user = "Welcome"\n\n[organization]\ncollaborator_auth_policy = "two_factor_mandatory"\nsession_timeout = "8h"\nsession_remember = "7d"/' \
  -e "s#^\[organization.token_ttl\]#[organization.service_token]\nfile = \"$work/org-token\"\n\n[organization.token_ttl]#" \
  config/demo.toml >"$work/config.toml"
TFE_ADMIN_PASSWORD=pytfe-check-password SMTP_PASSWORD=pytfe-check-smtp \
  target/debug/tfe-bootstrap run -q --config "$work/config.toml" --state-dir "$work/state"
"$venv/bin/python" scripts/pytfe_check.py "$url" "$work/state/admin-token" "$work/org-token"
kill "$sim_pid"

# HCP Terraform mode: tfe-sim --hcp with an owner's user token that may
# create the organization; config/hcp.toml as shipped, pointed at the sim.
owner=hcpOwner0token.atlasv1.pytfecheckpytfecheckpytfecheckpytfecheck
target/debug/tfe-sim --hcp --user-token "$owner" >"$work/hcp-url" &
sim_pid=$!
for _ in $(seq 1 200); do [ -s "$work/hcp-url" ] && break; sleep 0.05; done
url=$(head -1 "$work/hcp-url")
sed -e "s#^platform = \"hcp\"#platform = \"hcp\"\naddress = \"$url\"\nallow_insecure_http = true#" \
  -e "s#/var/lib/tfe-bootstrap/org-token#$work/hcp-org-token#" \
  config/hcp.toml >"$work/hcp.toml"
TFE_TOKEN="$owner" target/debug/tfe-bootstrap run -q --config "$work/hcp.toml" --state-dir "$work/hcp-state"
printf '%s\n' "$owner" >"$work/owner-token"
"$venv/bin/python" scripts/pytfe_check.py "$url" "$work/owner-token" "$work/hcp-org-token" --hcp
