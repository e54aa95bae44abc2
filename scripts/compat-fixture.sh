#!/usr/bin/env bash
# Writes tests/fixtures/compat-0.1.0: what a release of tfe-bootstrap leaves
# on disk and in a [store] after bootstrapping one TFE with two nodes, for
# tests/it/compat.rs, which checks that a later build resumes from it with
# no request and agrees with it on every checkpoint fingerprint and every
# [store] key (a fleet upgraded node by node must notice nothing).
#
#   scripts/compat-fixture.sh BIN_DIR [OUT_DIR]
#
# BIN_DIR holds the release's tfe-bootstrap and tfe-sim. The run uses fixed
# paths (/tmp/tfe-bootstrap-compat) and a fixed loopback address
# (127.0.0.77:18080): token file paths and the TFE address enter the
# fingerprints, so the test must meet the same ones. The tokens in the
# fixture are the simulator's, worthless anywhere else.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:?usage: compat-fixture.sh BIN_DIR [OUT_DIR]}
out=${2:-$here/tests/fixtures/compat-0.1.0}
base=/tmp/tfe-bootstrap-compat
addr=127.0.0.77:18080
rm -rf "$base"; mkdir -p "$base/store"
export T_ADMIN_PASSWORD=compat-admin-pw T_SMTP_PASSWORD=compat-smtp-pw
"$bin/tfe-sim" --listen "$addr" --iact compat-iact --iact-subnets 127.0.0.0/8 >"$base/sim.log" 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fsS "http://$addr/_sim/state" >/dev/null 2>&1 && break; sleep 0.1; done
for n in node1 node2; do
  sed -e "s|@BASE@|$base|g" -e "s|@NODE@|$n|g" -e "s|@STORE@|$here/scripts/store/file|g" \
    "$here/tests/fixtures/compat.toml.in" >"$base/$n.toml"
  chmod 600 "$base/$n.toml"
done
"$bin/tfe-bootstrap" run --config "$base/node1.toml" --output json >"$base/node1.run.json"
"$bin/tfe-bootstrap" run --config "$base/node2.toml" --output json >"$base/node2.run.json"
rm -rf "$out"; mkdir -p "$out"
for n in node1 node2; do
  mkdir -p "$out/$n"
  cp "$base/$n/state/state.json" "$out/$n/"
  for f in admin-token org-token owners-token agent-token; do
    [ -e "$base/$n/$f" ] && cp "$base/$n/$f" "$out/$n/"
  done
done
cp -r "$base/store" "$out/store"
"$bin/tfe-bootstrap" --version >"$out/VERSION"
echo "wrote $out"
