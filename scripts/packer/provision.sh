#!/bin/sh
# The image's provisioning, as root: the same script on a real AMI build
# (Packer's shell provisioner on the build instance, through sudo) and in
# the tests' null build (shell-local, in a throwaway root). PACKAGE: the
# .deb or .rpm built by scripts/release.sh; CONFIG: the config to bake in.
set -eu
: "${PACKAGE:?PACKAGE: the .deb or .rpm to install}" "${CONFIG:?CONFIG: the config to bake in}"
# Told apart by their first bytes, not their names: "!<ar" (a .deb is an ar
# archive), 0xedabeedb (the rpm lead).
case "$(head -c 4 "$PACKAGE" | od -An -tx1 | tr -d ' \n')" in
  213c6172) dpkg -i "$PACKAGE" ;;
  edabeedb) rpm -U --replacepkgs "$PACKAGE" ;;
  *) echo "provision.sh: $PACKAGE is neither a .deb nor an .rpm" >&2; exit 1 ;;
esac
install -d -m 0700 /etc/tfe-bootstrap
install -m 0600 "$CONFIG" /etc/tfe-bootstrap/config.toml
/usr/bin/tfe-bootstrap validate --config /etc/tfe-bootstrap/config.toml
# The package installs the unit in /usr/lib/systemd/system; enabling it
# needs no running systemd (an image build has none).
systemctl enable tfe-bootstrap.service
