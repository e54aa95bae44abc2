#!/usr/bin/env bash
# Checks what scripts/release.sh put in dist/ the way an operator meets it:
#   - SHA256SUMS verifies; each binary is fully static and at most 4 MB;
#   - the aarch64 binary, under qemu-aarch64 (Debian qemu-user), takes tfe-sim
#     through a full bootstrap, and a rerun sends no request;
#   - README's "Install" steps for the .deb work as written: the package
#     installs (--version, man -w, the unit), writes nothing under
#     /etc/tfe-bootstrap, units the operator enabled are disabled on
#     removal (and by the .rpm's %preun), and a purge leaves none of its
#     files;
#   - the .rpm holds the same files as the .deb (rpm -qlp, Debian's rpm);
#   - the cloud-init user-data files install this release's tarball and
#     bootstrap (scripts/cloud-init/run-example.sh --dist), and the Packer
#     example builds with a null source and boots (scripts/packer/run-example.sh);
#   - README's quick start runs as written (scripts/quick-start-check.sh);
#   - the container image's fetch stage (scripts/kubernetes/Dockerfile) runs
#     on the tarballs and leaves a static binary for each architecture.
# Needs root (dpkg -i). `--install` installs qemu-user, man-db and rpm.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--install" ]; then
  need=()
  command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
  command -v man >/dev/null || need+=(man-db)
  command -v rpm >/dev/null || need+=(rpm)
  command -v file >/dev/null || need+=(file)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  fi
fi
for t in qemu-aarch64 man rpm file dpkg python3 systemctl; do
  command -v "$t" >/dev/null || { echo "release-check: missing $t (scripts/release-check.sh --install)" >&2; exit 2; }
done
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
fail() { echo "release-check: FAIL: $*" >&2; exit 1; }
ok() { echo "release-check: ok: $*"; }

(cd dist && sha256sum -c --quiet SHA256SUMS) || fail "SHA256SUMS"
ok "sha256sum -c SHA256SUMS"

work=$(mktemp -d)
sim_pid=
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

for arch in x86_64 aarch64; do
  d=tfe-bootstrap-$version-$arch-linux
  tar -xzf "dist/$d.tar.gz" -C "$work"
  bin=$work/$d/tfe-bootstrap
  file "$bin" | grep -q "statically linked" || fail "$arch binary is not statically linked: $(file "$bin")"
  ! readelf -l "$bin" | grep -q INTERP || fail "$arch binary has an ELF interpreter"
  ! readelf -d "$bin" | grep -q NEEDED || fail "$arch binary has NEEDED entries"
  [ "$(stat -c %s "$bin")" -le 4000000 ] || fail "$arch binary is over 4 MB"
  for f in tfe-bootstrap.1 completions/tfe-bootstrap.bash completions/_tfe-bootstrap completions/tfe-bootstrap.fish \
           config/example.toml systemd/tfe-bootstrap.service store/etcd store/file README.md LICENSE CHANGELOG.md; do
    [ -e "$work/$d/$f" ] || fail "$d.tar.gz lacks $f"
  done
  ok "$d.tar.gz: static ($(stat -c %s "$bin") bytes), complete"
done

# The aarch64 binary through a full bootstrap against tfe-sim.
cargo build --locked --quiet --bin tfe-sim
target/debug/tfe-sim --listen 127.0.0.1:0 --iact-subnets 127.0.0.0/8 > "$work/sim.url" &
sim_pid=$!
for _ in $(seq 1 200); do [ -s "$work/sim.url" ] && break; sleep 0.05; done
url=$(head -1 "$work/sim.url")
[ -n "$url" ] || fail "tfe-sim did not start"
sed "s|http://127.0.0.1:18800|$url|" config/demo.toml > "$work/arm.toml"
chmod 0600 "$work/arm.toml"
arm=$work/tfe-bootstrap-$version-aarch64-linux/tfe-bootstrap
export TFE_ADMIN_PASSWORD="release-check-admin-pw-1" SMTP_PASSWORD="release-check-smtp-pw"
qemu-aarch64 "$arm" --version | grep -q "aarch64-unknown-linux-musl" || fail "aarch64 --version: $(qemu-aarch64 "$arm" --version)"
qemu-aarch64 "$arm" run --config "$work/arm.toml" --state-dir "$work/arm-state" >"$work/arm1.log" 2>&1 \
  || { cat "$work/arm1.log"; fail "aarch64 run under qemu"; }
count() { python3 -c 'import json,sys,urllib.request; print(len(json.load(urllib.request.urlopen(sys.argv[1]+"/_sim/state"))["requests"]))' "$url"; }
before=$(count)
qemu-aarch64 "$arm" run --config "$work/arm.toml" --state-dir "$work/arm-state" >"$work/arm2.log" 2>&1 \
  || { cat "$work/arm2.log"; fail "aarch64 rerun under qemu"; }
[ "$(count)" = "$before" ] || fail "the aarch64 rerun sent requests"
python3 - "$url" "$work/arm-state/admin-token" <<'PY' || fail "the admin token the aarch64 run wrote does not authenticate"
import sys, urllib.request
tok = open(sys.argv[2]).read().strip()
req = urllib.request.Request(sys.argv[1] + "/api/v2/account/details", headers={"Authorization": "Bearer " + tok})
assert urllib.request.urlopen(req).status == 200
PY
ok "aarch64 under qemu: full bootstrap, rerun sent no request, token_file authenticates"

# The container image's fetch stage (scripts/kubernetes/Dockerfile), its RUN
# line as written, on the real tarballs for both TARGETARCHs: no container
# engine runs here, so the image itself is not built. kubectl is a stand-in
# with its .sha256 (the download is the one step not executed).
run_line=$(awk '/^RUN set -eu; cd \/fetch;/{f=1} f{print} f && !/\\$/{exit}' scripts/kubernetes/Dockerfile | sed 's/^RUN //')
[ -n "$run_line" ] || fail "no fetch RUN line in scripts/kubernetes/Dockerfile"
for targetarch in amd64 arm64; do
  fetch=$work/fetch-$targetarch
  mkdir -p "$fetch"
  cp dist/SHA256SUMS dist/tfe-bootstrap-"$version"-*-linux.tar.gz "$fetch/"
  echo "stand-in kubectl" > "$fetch/kubectl"
  sha256sum "$fetch/kubectl" | cut -d' ' -f1 > "$fetch/kubectl.sha256"
  (VERSION=$version TARGETARCH=$targetarch sh -c "${run_line//cd \/fetch/cd $fetch}") >/dev/null \
    || fail "the Dockerfile's fetch stage for $targetarch"
  want=$([ "$targetarch" = amd64 ] && echo x86-64 || echo aarch64)
  file "$fetch/out/tfe-bootstrap" | grep -q "$want.*statically linked" \
    || fail "the $targetarch image would hold $(file "$fetch/out/tfe-bootstrap")"
  [ -x "$fetch/out/kubectl" ] || fail "the $targetarch image would lack kubectl"
done
"$work/fetch-amd64/out/tfe-bootstrap" --version | grep -q "x86_64-unknown-linux-musl" || fail "the image's binary does not run"
ok "Dockerfile fetch stage: checksums verified, static tfe-bootstrap for amd64 and arm64, kubectl beside it"

# README's install steps, as written (the block after <!-- install-deb -->).
steps=$(awk '/<!-- install-deb -->/{f=1; next} f && /^```sh/{g=1; next} g && /^```/{exit} g' README.md)
[ -n "$steps" ] || fail "README has no install-deb block"
etc_before=$(ls -A /etc/tfe-bootstrap 2>/dev/null | sort || true)
(cd dist && VERSION=$version bash -euxo pipefail -c "$steps") || fail "README install steps"
tfe-bootstrap --version | grep -q "x86_64-unknown-linux-musl" || fail "installed --version: $(tfe-bootstrap --version)"
man -w tfe-bootstrap >/dev/null || fail "man -w tfe-bootstrap"
[ -f /usr/lib/systemd/system/tfe-bootstrap.service ] || fail "no unit"
[ -f /usr/lib/systemd/system/tfe-bootstrap-renew.timer ] || fail "no renew timer"
grep -q '^ExecStart=/usr/bin/tfe-bootstrap renew ' /usr/lib/systemd/system/tfe-bootstrap-renew.service \
  || fail "the packaged renew unit does not run /usr/bin/tfe-bootstrap renew"
grep -q '^ExecStart=/usr/bin/tfe-bootstrap ' /usr/lib/systemd/system/tfe-bootstrap.service || fail "the packaged unit does not run /usr/bin/tfe-bootstrap"
[ -x /usr/lib/tfe-bootstrap/store/etcd ] || fail "no store helpers"
[ "$(ls -A /etc/tfe-bootstrap 2>/dev/null | sort || true)" = "$etc_before" ] || fail "the package wrote to /etc/tfe-bootstrap"
files=$(dpkg -L tfe-bootstrap | while read -r p; do [ -f "$p" ] && echo "$p"; done)
# The operator enables the units (README "systemd"); removing the package
# disables them: no link is left dangling in /etc/systemd/system (the
# maintainer scripts in scripts/packaging/deb, as debhelper and Fedora's
# macros do it). The .rpm's %preun does the same against the same files.
units_enabled() { find /etc/systemd/system -name 'tfe-bootstrap*' | grep -q .; }
enable_units() {
  systemctl enable tfe-bootstrap.service tfe-bootstrap-renew.timer >/dev/null 2>&1 || fail "systemctl enable"
  [ -L /etc/systemd/system/multi-user.target.wants/tfe-bootstrap.service ] || fail "systemctl enable made no link"
}
enable_units
rpm -qp --queryformat '%{PREUN}' "dist/tfe-bootstrap-$version-1.x86_64.rpm" > "$work/preun"
grep -q 'disable' "$work/preun" || fail "the .rpm has no %preun disable"
sh "$work/preun" 0 || fail "the .rpm's %preun"
! units_enabled || fail "the .rpm's %preun left $(find /etc/systemd/system -name 'tfe-bootstrap*')"
enable_units
dpkg -r tfe-bootstrap >/dev/null
! units_enabled || fail "dpkg -r left $(find /etc/systemd/system -name 'tfe-bootstrap*')"
dpkg -P tfe-bootstrap >/dev/null
[ -z "$(find /etc/systemd/system -xtype l -name 'tfe-bootstrap*')" ] || fail "dangling links: $(find /etc/systemd/system -xtype l -name 'tfe-bootstrap*')"
for p in $files; do [ ! -e "$p" ] || fail "$p is left after the purge"; done
ok ".deb: installs as README says, --version, man -w, unit and helpers; enabled units are disabled on removal (and by the .rpm's %preun); purge leaves nothing"

deb_files=$(dpkg-deb -c "dist/tfe-bootstrap_${version}_amd64.deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|' | sort)
rpm_files=$(rpm -qlp "dist/tfe-bootstrap-$version-1.x86_64.rpm" 2>/dev/null | while read -r p; do
  case "$p" in */) ;; *) echo "$p";; esac; done | sort)
rpm_only_files=$(comm -13 <(echo "$deb_files") <(echo "$rpm_files") | grep -v -x -e /usr/lib/tfe-bootstrap -e /usr/lib/tfe-bootstrap/store -e /usr/share/doc/tfe-bootstrap -e /usr/share/doc/tfe-bootstrap/examples || true)
deb_only=$(comm -23 <(echo "$deb_files") <(echo "$rpm_files"))
[ -z "$deb_only" ] && [ -z "$rpm_only_files" ] || fail ".deb and .rpm differ: deb only: $deb_only; rpm only: $rpm_only_files"
ok ".rpm lists the same $(echo "$rpm_files" | wc -l) files as the .deb"
# The cloud-init user-data files with the real release tarball (the test
# suite runs them with one assembled from the debug binary).
if { command -v cloud-init >/dev/null && command -v moto_server >/dev/null; } || [ -n "${TFE_BOOTSTRAP_REQUIRE_CLOUD_INIT:-}" ]; then
  scripts/cloud-init/run-example.sh --bin-dir target/debug --dist dist >"$work/cloud-init.log" 2>&1 \
    || { cat "$work/cloud-init.log"; fail "the cloud-init examples with the release tarball"; }
  ok "cloud-init: both user-data files install the release tarball and bootstrap"
else
  echo "release-check: cloud-init examples with the release tarball SKIPPED (cloud-init or moto_server missing)"
fi
# The Packer template built with a null source around the same
# provision.sh and the real .deb, then the baked unit's first boot.
if command -v packer >/dev/null || [ -n "${TFE_BOOTSTRAP_REQUIRE_PACKER:-}" ]; then
  scripts/packer/run-example.sh --bin-dir target/debug --dist dist >"$work/packer.log" 2>&1 \
    || { cat "$work/packer.log"; fail "the Packer example"; }
  sed 's/^/  /' "$work/packer.log" | grep 'example: ok:'
  ok "packer: validate, null build through provision.sh with the .deb, the unit's first boot"
else
  echo "release-check: the Packer example SKIPPED (packer missing: apt-get install packer)"
fi
# README's quick start for package users, as written: dpkg -i to a
# bootstrapped TFE and terraform init (where terraform is installed).
scripts/quick-start-check.sh --bin-dir target/debug --dist dist >"$work/quick-start.log" 2>&1 \
  || { cat "$work/quick-start.log"; fail "README's quick start"; }
grep 'example: \(ok\|.*SKIPPED\)' "$work/quick-start.log" | sed 's/^/  /'
ok "README quick start runs as written"
echo "release-check: all passed"
