#!/usr/bin/env bash
# Runs README's "Quick start from the package" as written (the blocks after
# <!-- quick-start --> and <!-- quick-start-terraform -->), as root in a
# throwaway root (scripts/lib/sandbox.sh: overlays over /usr /etc /var
# /root, tfe.example.com served by tfe-sim over TLS from a CA in the
# system store), with the release's .deb from --dist:
#
#   scripts/quick-start-check.sh --bin-dir target/debug --dist dist
#
# Checked: the run bootstrapped TFE (one admin, my-org), the credentials
# file holds the owners team's token for tfe.example.com, and `terraform
# init` initialized the cloud block (skipped, saying so, without terraform).
set -euo pipefail
root_dir=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/sandbox.sh
. "$root_dir/scripts/lib/sandbox.sh"
sandbox_start "$0" required "dpkg" "$@"
sandbox_setup quick-start
sandbox_overlay usr etc var root
[ ! -e /usr/bin/tfe-bootstrap ] || dpkg -P tfe-bootstrap >/dev/null 2>&1 || true
block() { awk -v m="<!-- $1 -->" '$0 == m {f=1; next} f && /^```sh/ {g=1; next} g && /^```/ {exit} g' "$root_dir/README.md"; }
steps=$(block quick-start)
[ -n "$steps" ] || fail "README has no quick-start block"

IACT=$(random_secret iact)
ADMIN_PASSWORD=$(random_secret adm1n)
export IACT ADMIN_PASSWORD
iact=$IACT
sandbox_sim "$bin_dir/tfe-sim" --ready-after 1s
mkdir -p "$work/release"
cp "$dist/SHA256SUMS" "$dist"/tfe-bootstrap_*_amd64.deb "$work/release/"
(cd "$work/release" && HOME=/root bash -euo pipefail -c "$steps") >"$work/quick-start.log" 2>&1 \
  || { cat "$work/quick-start.log"; fail "the quick-start block"; }
grep -q 'done: .* (exit 0)' "$work/quick-start.log" || fail "no finished run: $(tail -5 "$work/quick-start.log")"
[ "$(sim_count 'len(s["users"])')" = 1 ] || fail "not one admin"
[ "$(sim_count '",".join(o["name"] for o in s["organizations"])')" = my-org ] || fail "no my-org"
python3 - /root/.terraform.d/credentials.tfrc.json /var/lib/tfe-bootstrap/owners-token <<'PY' || fail "credentials.tfrc.json does not hold the owners token for tfe.example.com"
import json, sys
creds = json.load(open(sys.argv[1]))["credentials"]
assert creds["tfe.example.com"]["token"] == open(sys.argv[2]).read().strip()
PY
! grep -qF -e "$IACT" -e "$ADMIN_PASSWORD" "$work/quick-start.log" || fail "a secret was printed"
ok "README quick start: dpkg -i, config, preflight, run: TFE bootstrapped, credentials.tfrc.json written"
if command -v terraform >/dev/null; then
  # A TF_CLI_CONFIG_FILE in the environment (this machine sets one) makes
  # Terraform skip credentials.tfrc.json: README says so; a fresh root has none.
  (cd /root && HOME=/root env -u TF_CLI_CONFIG_FILE bash -euo pipefail -c "$(block quick-start-terraform)") >"$work/terraform.log" 2>&1 \
    || { cat "$work/terraform.log"; fail "the quick-start terraform block"; }
  grep -q 'has been successfully initialized' "$work/terraform.log" \
    || fail "terraform init did not initialize: $(tail -5 "$work/terraform.log")"
  ok "README quick start: terraform init with the cloud block works"
else
  echo "quick-start example: terraform init SKIPPED (no terraform on PATH)"
fi
