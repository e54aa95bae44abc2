#!/usr/bin/env bash
# Runs the Packer example the way Packer does, then boots what it baked
# (issue 35):
#
#   scripts/packer/run-example.sh --bin-dir target/debug --dist dist
#
# 1. `packer validate` the shipped template (with a source_ami; the
#    amazon-ebs builder contacts nothing to validate).
# 2. `packer build -only=null.local` of the shipped template beside
#    tests/fixtures/packer/null.pkr.hcl (a null source whose shell-local
#    provisioner runs the same scripts/packer/provision.sh), with the .deb
#    from --dist. It runs in a throwaway root: /usr, /etc and /var are
#    overlays whose changes vanish with the namespace. Checked: the package
#    installed, the config baked in 0600, the unit enabled.
# 3. The first boot of that image: the enabled unit's ExecStart line, as
#    written, with its EnvironmentFile, StateDirectory and UMask, against
#    tfe-sim on https://tfe.example.com (scripts/lib/sandbox.sh); then a
#    second boot, which sends nothing. No systemd runs here (no PID 1):
#    the line is read from the unit and executed, not `systemd-run`.
#
# Packer 1.6 (Debian 12) cannot read plugins.pkr.hcl (required_plugins is
# 1.7+), so the build directory holds symlinks to the shipped
# tfe-bootstrap.pkr.hcl and the fixture only. Root only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root_dir=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/sandbox.sh
. "$root_dir/scripts/lib/sandbox.sh"

sandbox_start "$0" required "packer dpkg systemctl" "$@"
sandbox_setup packer
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root_dir/Cargo.toml" | head -1)
deb=$dist/tfe-bootstrap_${version}_amd64.deb
[ -f "$deb" ] || fail "no $deb (scripts/release.sh)"

# The throwaway root: what the build writes lands in overlays.
sandbox_overlay usr etc var root
[ ! -e /usr/bin/tfe-bootstrap ] || dpkg -P tfe-bootstrap >/dev/null 2>&1 || true

# 1-2: validate, then build with the null source.
build=$work/build
mkdir -p "$build"
ln -s "$here/tfe-bootstrap.pkr.hcl" "$build/"
ln -s "$root_dir/tests/fixtures/packer/null.pkr.hcl" "$build/"
cd "$root_dir"
packer validate -var source_ami=ami-0123456789abcdef0 "$build" >"$work/validate.log" 2>&1 \
  || { cat "$work/validate.log"; fail "packer validate"; }
ok "packer $(packer version | head -1 | cut -d' ' -f2): the shipped template validates"
packer build -only=null.local -var source_ami=ami-0123456789abcdef0 -var "package=$deb" "$build" \
  >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "packer build"; }
/usr/bin/tfe-bootstrap --version >/dev/null || fail "the package is not installed"
[ "$(stat -c %a /etc/tfe-bootstrap/config.toml)" = 600 ] || fail "config.toml is not 0600"
cmp -s /etc/tfe-bootstrap/config.toml config/starter.toml || fail "the baked config is not config/starter.toml"
unit=/etc/systemd/system/multi-user.target.wants/tfe-bootstrap.service
[ -L "$unit" ] || fail "the unit is not enabled"
ok "packer build (null source, provision.sh): package installed, config baked 0600, unit enabled"

# 3: first boot. The instance's secrets arrive in the unit's env file (the
# template's comment: written from the instance's secret store at boot).
iact=$(random_secret iact)
admin_pw=$(random_secret adm1n)
sandbox_sim "$bin_dir/tfe-sim" --ready-after 1s
printf 'TFE_IACT_TOKEN=%s\nTFE_ADMIN_PASSWORD=%s\n' "$iact" "$admin_pw" > /etc/tfe-bootstrap/env
chmod 0600 /etc/tfe-bootstrap/env
unit_exec "$unit" >"$work/boot1.log" 2>&1 || { cat "$work/boot1.log"; fail "the first boot's ExecStart"; }
grep -q 'done: .* (exit 0)' "$work/boot1.log" || fail "the first boot did not finish: $(tail -3 "$work/boot1.log")"
[ "$(sim_count 'len(s["users"])')" = 1 ] || fail "not one admin after the first boot"
authenticates /var/lib/tfe-bootstrap/admin-token || fail "the admin token does not authenticate"
! grep -qF -e "$iact" -e "$admin_pw" "$work/boot1.log" -r /var/lib/tfe-bootstrap || fail "a secret was printed or stored"
ok "first boot: the unit's ExecStart as written bootstrapped TFE, the admin token authenticates"
before=$(sim_count 'len(s["requests"])')
unit_exec "$unit" >"$work/boot2.log" 2>&1 || { cat "$work/boot2.log"; fail "the second boot's ExecStart"; }
[ "$(sim_count 'len(s["requests"])')" = "$before" ] || fail "the second boot sent requests"
ok "second boot: the unit's ExecStart sends nothing"
