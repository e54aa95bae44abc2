#!/usr/bin/env bash
# Executes the shipped units' ExecStart lines as written (issue 35), in a
# throwaway root (scripts/lib/sandbox.sh: overlays over /usr /etc /var
# /root; tfe-sim is https://tfe.example.com, its CA in the system store):
#
#   scripts/units-check.sh --bin-dir target/debug
#
# The binary goes where the units and the tarball install put it
# (/usr/local/bin), config/starter.toml to /etc/tfe-bootstrap/config.toml,
# the one-time secrets to the units' EnvironmentFile. Then:
# tfe-bootstrap.service bootstraps TFE; run again (the next boot) it sends
# nothing; tfe-bootstrap-renew.service renews nothing yet and exits 0; with
# the env file removed (the secrets used up) the next boot still exits 0.
# No systemd runs here (no PID 1): `unit_exec` reads each line from the
# unit and runs it in the unit's environment. Root only.
set -euo pipefail
root_dir=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/sandbox.sh
. "$root_dir/scripts/lib/sandbox.sh"
sandbox_start "$0" none "" "$@"
sandbox_setup systemd
sandbox_overlay usr etc var root
units=$root_dir/scripts/systemd
install -d /usr/local/bin
install -m 0755 "$bin_dir/tfe-bootstrap" /usr/local/bin/tfe-bootstrap
install -d -m 0700 /etc/tfe-bootstrap
install -m 0600 "$root_dir/config/starter.toml" /etc/tfe-bootstrap/config.toml
iact=$(random_secret iact)
admin_pw=$(random_secret adm1n)
printf 'TFE_IACT_TOKEN=%s\nTFE_ADMIN_PASSWORD=%s\n' "$iact" "$admin_pw" > /etc/tfe-bootstrap/env
chmod 0600 /etc/tfe-bootstrap/env
sandbox_sim "$bin_dir/tfe-sim" --ready-after 1s

unit_exec "$units/tfe-bootstrap.service" >"$work/boot1.log" 2>&1 \
  || { cat "$work/boot1.log"; fail "tfe-bootstrap.service's ExecStart"; }
grep -q 'done: .* (exit 0)' "$work/boot1.log" || fail "the first boot did not finish: $(tail -3 "$work/boot1.log")"
[ "$(sim_count 'len(s["users"])')" = 1 ] || fail "not one admin"
[ "$(stat -c %a /var/lib/tfe-bootstrap)" = 700 ] || fail "the state directory is not 0700"
[ "$(stat -c %a /var/lib/tfe-bootstrap/admin-token)" = 600 ] || fail "the admin token is not 0600"
authenticates /var/lib/tfe-bootstrap/admin-token || fail "the admin token does not authenticate"
! grep -rqF -e "$iact" -e "$admin_pw" "$work/boot1.log" /var/lib/tfe-bootstrap || fail "a secret was printed or stored"
ok "tfe-bootstrap.service: ExecStart as written bootstrapped TFE; state 0700, admin token 0600 and working"
before=$(sim_count 'len(s["requests"])')
unit_exec "$units/tfe-bootstrap.service" >"$work/boot2.log" 2>&1 || { cat "$work/boot2.log"; fail "the next boot"; }
[ "$(sim_count 'len(s["requests"])')" = "$before" ] || fail "the next boot sent requests"
ok "tfe-bootstrap.service: the next boot sends nothing"
unit_exec "$units/tfe-bootstrap-renew.service" >"$work/renew.log" 2>&1 || { cat "$work/renew.log"; fail "tfe-bootstrap-renew.service"; }
ok "tfe-bootstrap-renew.service: ExecStart as written exits 0"
rm /etc/tfe-bootstrap/env
unit_exec "$units/tfe-bootstrap.service" >"$work/boot3.log" 2>&1 || { cat "$work/boot3.log"; fail "a boot after the secrets were removed"; }
ok "tfe-bootstrap.service: with the one-time secrets removed, a boot still exits 0"
