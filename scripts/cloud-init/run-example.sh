#!/usr/bin/env bash
# Executes the shipped user-data files with cloud-init itself, as a first
# boot would, against tfe-sim (issue 35):
#
#   scripts/cloud-init/run-example.sh --bin-dir target/debug [--dist dist]
#
# Everything happens in a throwaway network and mount namespace (root
# only): loopback only, /etc/hosts naming tfe.example.com, artifacts.
# example.com and etcd.internal.example.com, a private CA added to the
# system trust store. There, tfe-sim serves TFE over TLS on 443, a small
# HTTPS server serves the release (the tarball and SHA256SUMS from --dist,
# or assembled from --bin-dir in release.sh's layout), moto serves AWS
# Secrets Manager, and etcd the fleet's store. Each "instance" is a nested
# mount namespace whose /etc/cloud, /var/lib/cloud, /etc/tfe-bootstrap,
# /usr/local, /var/lib/tfe-bootstrap and /var/log are fresh tmpfs, with a
# NoCloud seed holding the user-data byte for byte, and cloud-init's own
# stages run in order (init: write_files; config: runcmd; final:
# scripts_user). Checked: the binary installs, the config lands 0600, the
# bootstrap completes, no secret reaches cloud-init's log, and a second boot
# of the same instance sends TFE nothing; the fleet user-data boots on two
# instances at once against one etcd, and exactly one admin, one test mail
# and one org token result, each node's token file authenticating.
#
# Needs: cloud-init, unshare, ip, openssl, curl, python3, etcd, etcdctl, and
# aws + moto_server (PyPI awscli, moto[server]) on PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root_dir=$(cd "$here/../.." && pwd)

# shellcheck source=../lib/sandbox.sh
. "$root_dir/scripts/lib/sandbox.sh"

sandbox_start "$0" optional "cloud-init etcd etcdctl aws moto_server" "$@"
sandbox_setup cloud-init
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root_dir/Cargo.toml" | head -1)

# The release, as release.sh lays it out, served over HTTPS.
arch=$(uname -m)
name=tfe-bootstrap-$version-$arch-linux
mkdir -p "$work/www/tfe-bootstrap/$version"
if [ -n "$dist" ]; then
  cp "$dist/$name.tar.gz" "$dist/SHA256SUMS" "$work/www/tfe-bootstrap/$version/"
else
  mkdir -p "$work/stage/$name/store"
  install -m 0755 "$bin_dir/tfe-bootstrap" "$work/stage/$name/tfe-bootstrap"
  install -m 0755 "$root_dir"/scripts/store/* "$work/stage/$name/store/"
  tar -C "$work/stage" -czf "$work/www/tfe-bootstrap/$version/$name.tar.gz" "$name"
  (cd "$work/www/tfe-bootstrap/$version" && sha256sum -- *.tar.gz > SHA256SUMS)
fi
python3 - "$work" 2>"$work/www.log" <<'PY' &
import http.server, ssl, sys, functools
w = sys.argv[1]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=w + "/www")
httpd = http.server.ThreadingHTTPServer(("127.0.0.2", 443), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(w + "/tls.pem", w + "/tls.key")
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
httpd.serve_forever()
PY
pids+=($!)

# Secrets Manager (moto) with the secrets the user-data reads.
moto_server -H 127.0.0.1 -p 5000 >"$work/moto.log" 2>&1 &
pids+=($!)
export AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
iact=$(random_secret iact)
admin_pw=$(random_secret adm1n)
smtp_pw=$(random_secret smtp)
for _ in $(seq 1 300); do curl -s -o /dev/null "$AWS_ENDPOINT_URL" && break; sleep 0.1; done
put() { aws secretsmanager create-secret --name "$1" --secret-string "$2" >/dev/null || fail "create secret $1"; }
put tfe/ca-pem "$(cat "$work/ca.pem")"
put tfe/etcd-ca-pem "$(cat "$work/ca.pem")"
put tfe/iact-token "$iact"
put tfe/admin-password "$admin_pw"
put tfe/smtp-password "$smtp_pw"

# etcd, the fleet's store, over TLS.
etcd --name ci --data-dir "$work/etcd" --listen-client-urls https://127.0.0.3:2379 \
  --advertise-client-urls https://etcd.internal.example.com:2379 \
  --listen-peer-urls http://127.0.0.3:2380 --initial-advertise-peer-urls http://127.0.0.3:2380 \
  --initial-cluster ci=http://127.0.0.3:2380 \
  --cert-file "$work/tls.pem" --key-file "$work/tls.key" >"$work/etcd.log" 2>&1 &
pids+=($!)

start_sim() { sandbox_sim "$bin_dir/tfe-sim" --ready-after 2s; }
count() { sim_count "$1"; }

# One instance: fresh tmpfs over what an image would not carry, the NoCloud
# seed, and cloud-init's stages. Run as `boot USER-DATA INSTANCE-ID ROOT`;
# ROOT keeps the instance's disk between its boots.
boot() {
  local user_data=$1 iid=$2 disk=$3
  unshare --mount -- bash -euo pipefail -c '
    disk=$1 user_data=$2 iid=$3
    for d in etc/cloud var/lib/cloud etc/tfe-bootstrap usr/local var/lib/tfe-bootstrap var/log; do
      mkdir -p "$disk/$d" "/$d"; mount --bind "$disk/$d" "/$d"
    done
    mkdir -p /run/cloud-init /var/lib/cloud/seed/nocloud /usr/local/bin
    mount -t tmpfs tmpfs /run/cloud-init
    cp "$user_data" /var/lib/cloud/seed/nocloud/user-data
    printf "instance-id: %s\nlocal-hostname: %s\n" "$iid" "$iid" > /var/lib/cloud/seed/nocloud/meta-data
    cat > /etc/cloud/cloud.cfg <<CFG
datasource_list: [ NoCloud ]
cloud_init_modules: [ write_files ]
cloud_config_modules: [ runcmd ]
cloud_final_modules: [ scripts_user ]
output: { all: "| tee -a /var/log/cloud-init-output.log" }
system_info:
  distro: debian
  paths: { cloud_dir: /var/lib/cloud/, templates_dir: /etc/cloud/templates/ }
CFG
    cloud-init init >/dev/null 2>&1
    cloud-init modules --mode config >/dev/null 2>&1
    cloud-init modules --mode final >/dev/null 2>&1 || true
  ' boot "$disk" "$user_data" "$iid"
}

# What an instance's disk must hold after its first boot.
check_instance() {
  local disk=$1 what=$2
  python3 - "$disk" <<'PY' || fail "$what: cloud-init reported errors: $(cat "$disk/var/lib/cloud/data/result.json" 2>/dev/null); its output log ends: $(tail -15 "$disk/var/log/cloud-init-output.log" 2>/dev/null)"
import json, sys
r = json.load(open(sys.argv[1] + "/var/lib/cloud/data/result.json"))["v1"]
sys.exit(1 if r["errors"] else 0)
PY
  [ "$(stat -c %a "$disk/usr/local/bin/tfe-bootstrap")" = 755 ] || fail "$what: the binary is not installed 0755"
  "$disk/usr/local/bin/tfe-bootstrap" --version >/dev/null || fail "$what: the installed binary does not run"
  [ -x "$disk/usr/local/lib/tfe-bootstrap/store/etcd" ] || fail "$what: the store helpers are not installed"
  [ "$(stat -c %a "$disk/etc/tfe-bootstrap/config.toml")" = 600 ] || fail "$what: config.toml is not 0600"
  local log=$disk/var/log/cloud-init-output.log
  [ -s "$log" ] || fail "$what: no cloud-init output log"
  grep -q 'done: .* (exit 0)' "$log" || fail "$what: the bootstrap did not complete: $(tail -5 "$log")"
  for s in "$iact" "$admin_pw" "$smtp_pw"; do
    ! grep -rqF -- "$s" "$disk/var/log" "$disk/var/lib/cloud" "$disk/etc" "$disk/var/lib/tfe-bootstrap" || fail "$what: a secret is in the log or on disk"
  done
}

# The single-node user-data: first boot, then a second boot of the same instance.
start_sim
disk=$work/node
boot "$here/user-data.yaml" i-single "$disk"
check_instance "$disk" "user-data.yaml"
[ "$(stat -c %a "$disk/etc/tfe-bootstrap/ca.pem")" = 644 ] || [ -s "$disk/etc/tfe-bootstrap/ca.pem" ] || fail "no ca.pem"
[ "$(count 'len(s["users"])')" = 1 ] || fail "user-data.yaml: not one admin"
[ "$(count '",".join(o["name"] for o in s["organizations"])')" = platform ] || fail "user-data.yaml: no organization"
[ "$(count 'len(s["test-mails"])')" = 1 ] || fail "user-data.yaml: not one test mail"
authenticates "$disk/var/lib/tfe-bootstrap/admin-token" || fail "user-data.yaml: the admin token does not authenticate"
ok "user-data.yaml: installed, config 0600, bootstrap done, no secret in the log, token authenticates"
before=$(count 'len(s["requests"])')
boot "$here/user-data.yaml" i-single "$disk"
[ "$(count 'len(s["requests"])')" = "$before" ] || fail "user-data.yaml: the second boot sent requests"
[ "$(grep -c 'done: ' "$disk/var/log/cloud-init-output.log")" = 1 ] || fail "user-data.yaml: the second boot ran the bootstrap again"
ok "user-data.yaml: a second boot of the same instance does nothing"

# The fleet user-data on two instances at once, one TFE, one etcd.
start_sim
for _ in $(seq 1 300); do
  ETCDCTL_API=3 etcdctl --endpoints https://etcd.internal.example.com:2379 --cacert "$work/ca.pem" \
    endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done
boot "$here/fleet-user-data.yaml" i-node-a "$work/a" &
a=$!
boot "$here/fleet-user-data.yaml" i-node-b "$work/b" &
b=$!
wait "$a"; wait "$b"
for n in a b; do
  check_instance "$work/$n" "fleet-user-data.yaml node $n"
  authenticates "$work/$n/var/lib/tfe-bootstrap/org-token" || fail "fleet-user-data.yaml node $n: its org token does not authenticate"
done
[ "$(count 'len(s["users"])')" = 1 ] || fail "fleet: not one admin"
[ "$(count 'len(s["test-mails"])')" = 1 ] || fail "fleet: not one test mail"
ok "fleet-user-data.yaml: two instances at once against one etcd: one admin, one test mail, both org tokens authenticate"
before=$(count 'len(s["requests"])')
boot "$here/fleet-user-data.yaml" i-node-a "$work/a"
[ "$(count 'len(s["requests"])')" = "$before" ] || fail "fleet: a second boot sent requests"
ok "fleet-user-data.yaml: a second boot of the same instance does nothing"
