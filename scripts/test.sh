#!/usr/bin/env bash
# The whole test suite: formatting, lints, the API docs (every link
# resolves, every error variant says when it happens), unit and integration tests (the
# real binaries against tfe-sim, over HTTP and TLS), and the cross-check of
# the simulator's wire format with the official Python SDK.
set -euo pipefail
cd "$(dirname "$0")/.."
# Say everything that is missing at once, and how to get it.
missing=()
command -v cargo >/dev/null || missing+=("cargo (Rust: https://rustup.rs)")
cargo fmt --version >/dev/null 2>&1 || missing+=("rustfmt (rustup component add rustfmt)")
cargo clippy --version >/dev/null 2>&1 || missing+=("clippy (rustup component add clippy)")
command -v python3 >/dev/null || missing+=("python3")
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=("python3-venv (apt-get install python3-venv)")
command -v script >/dev/null || missing+=("script(1) (apt-get install bsdutils)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'test.sh: missing:\n' >&2
  printf '  - %s\n' "${missing[@]}" >&2
  echo "The first run also needs the network: crates.io for the build, PyPI for pytfe." >&2
  exit 2
fi
command -v aws >/dev/null && command -v moto_server >/dev/null ||
  echo "test.sh: aws / moto_server are not on PATH: the aws-ssm store test will be skipped (pip install awscli 'moto[server]')" >&2
command -v faketime >/dev/null ||
  echo "test.sh: libfaketime is not installed: the wrong-clock tests will be skipped (apt-get install faketime)" >&2
command -v promtool >/dev/null ||
  echo "test.sh: promtool is not installed: the metrics textfile is not checked with it (apt-get install prometheus)" >&2
command -v etcd >/dev/null && command -v etcdctl >/dev/null ||
  echo "test.sh: etcd is not installed: the [store] tests against a real etcd will be skipped (apt-get install etcd-server etcd-client)" >&2
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --quiet
# Which tests used an external tool (etcd, faketime, promtool, terraform,
# cloud-init, packer, kubectl, root ...) and which skipped for want of one:
# each records itself (tests/it/util.rs `external`); said at the end, so a
# reader of CI's log knows what ran.
report=$(mktemp)
trap 'rm -f "$report"' EXIT
summary() {
  echo "test.sh: external-tool tests:"
  if [ ! -s "$report" ]; then echo "  (none recorded)"; return; fi
  # One line per test: SKIPPED when any of its tools was missing.
  sort -u "$report" | awk -F'\t' '
    { if ($1 == "SKIPPED") skip[$2] = (skip[$2] ? skip[$2] "; " : "") $3; else tools[$2] = (tools[$2] ? tools[$2] ", " : "") $3 }
    END {
      for (t in tools) if (!(t in skip)) printf "  ran      %s (%s)\n", t, tools[t]
      for (t in skip) printf "  SKIPPED  %s (%s)\n", t, skip[t]
    }' | sort -k1,1r -k2
}
TFE_BOOTSTRAP_TOOL_REPORT=$report cargo test --locked || { summary; exit 1; }
summary
scripts/pytfe-check.sh
