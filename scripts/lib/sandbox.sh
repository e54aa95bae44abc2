# Sourced by the example runners (scripts/cloud-init/run-example.sh,
# scripts/packer/run-example.sh, scripts/units-check.sh,
# scripts/quick-start-check.sh): a throwaway machine inside a network and
# mount namespace of this one. Call `sandbox_start "$0" DIST TOOLS "$@"`
# first (outside: parses --bin-dir/--dist, checks root and the tools,
# re-executes the script inside `unshare --mount --net`; inside: sets
# bin_dir and dist), then `sandbox_setup NAME` and `sandbox_sim`.
#
# Inside: loopback only; /etc/hosts names tfe.example.com (127.0.0.1),
# artifacts.example.com (127.0.0.2) and etcd.internal.example.com
# (127.0.0.3); one private CA, trusted in the system store
# (/etc/ssl/certs/ca-certificates.crt, bind-mounted), has issued
# $work/tls.pem for all three names. Nothing outside the namespace changes.

# SCRIPT DIST TOOLS ARGS...: DIST is "required", "optional" or "none" (for
# --dist DIR, the release's files); TOOLS the programs SCRIPT needs besides
# the sandbox's own. Returns only inside the namespaces.
sandbox_start() {
  local script=$1 want_dist=$2 tools=$3
  shift 3
  if [ "${1:-}" = --inside ]; then
    bin_dir=$2 dist=${3:-}
    return
  fi
  local usage="usage: $script --bin-dir DIR"
  case $want_dist in required) usage="$usage --dist DIR" ;; optional) usage="$usage [--dist DIR]" ;; esac
  bin_dir= dist=
  while [ $# -gt 0 ]; do
    case $1 in
      --bin-dir) bin_dir=$(cd "$2" && pwd); shift 2 ;;
      --dist) [ "$want_dist" != none ] || { echo "$usage" >&2; exit 2; }; dist=$(cd "$2" && pwd); shift 2 ;;
      *) echo "$usage" >&2; exit 2 ;;
    esac
  done
  [ -n "$bin_dir" ] || { echo "$usage" >&2; exit 2; }
  [ "$want_dist" != required ] || [ -n "$dist" ] || { echo "$usage" >&2; exit 2; }
  [ "$(id -u)" = 0 ] || { echo "$(basename "$script"): needs root (namespaces, mounts)" >&2; exit 2; }
  local t
  for t in $tools unshare ip openssl curl python3; do
    command -v "$t" >/dev/null || { echo "$(basename "$script"): missing $t" >&2; exit 2; }
  done
  exec unshare --mount --net --fork -- "$script" --inside "$bin_dir" "$dist"
}

sandbox_setup() { # NAME: the work dir, hosts, CA, trust store, cleanup
  sandbox_name=$1
  work=$(mktemp -d "/tmp/tfe-$sandbox_name.XXXXXX")
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP_WORK:-}" ] || rm -rf "$work"' EXIT
  mount --make-rprivate /
  ip link set lo up
  cat /etc/hosts > "$work/hosts"
  printf '127.0.0.1 tfe.example.com\n127.0.0.2 artifacts.example.com\n127.0.0.3 etcd.internal.example.com\n' >> "$work/hosts"
  mount --bind "$work/hosts" /etc/hosts
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=example test CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=tfe.example.com" \
    -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
  printf 'subjectAltName=DNS:tfe.example.com,DNS:artifacts.example.com,DNS:etcd.internal.example.com\nextendedKeyUsage=serverAuth\n' > "$work/ext"
  openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
    -days 2 -extfile "$work/ext" -out "$work/tls.pem" 2>/dev/null
  { cat /etc/ssl/certs/ca-certificates.crt 2>/dev/null || true; cat "$work/ca.pem"; } > "$work/trust.pem"
  sandbox_trust
}

# The system store becomes $work/trust.pem, by a bind mount only: nothing
# is created outside the namespace, even where the store is missing.
sandbox_trust() {
  local store=/etc/ssl/certs/ca-certificates.crt
  if [ -e "$store" ]; then
    mount --bind "$work/trust.pem" "$store"
  else
    [ -d /etc/ssl/certs ] || fail "no /etc/ssl/certs to hold the test CA (apt-get install ca-certificates)"
    mkdir -p "$work/certs"
    cp -a /etc/ssl/certs/. "$work/certs/"
    cp "$work/trust.pem" "$work/certs/ca-certificates.crt"
    mount --bind "$work/certs" /etc/ssl/certs
  fi
}

sandbox_overlay() { # DIR...: changes under /DIR land in overlays that vanish
  local d
  for d in "$@"; do
    mkdir -p "$work/$d-up" "$work/$d-work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$work/$d-up,workdir=$work/$d-work" "/$d"
  done
  # An overlay over /etc hides the bind mounts made before it: again.
  mount --bind "$work/hosts" /etc/hosts
  sandbox_trust
}

fail() { echo "$sandbox_name example: FAIL: $*" >&2; exit 1; }
ok() { echo "$sandbox_name example: ok: $*"; }

sim=
sandbox_sim() { # TFE_SIM [ARGS...]: a fresh TFE on https://tfe.example.com (IACT $iact)
  local bin=$1; shift
  if [ -n "$sim" ]; then kill "$sim" 2>/dev/null || true; wait "$sim" 2>/dev/null || true; fi
  : > "$work/sim.url"
  TFE_SIM_IACT=$iact "$bin" --listen 127.0.0.1:443 --hostname tfe.example.com \
    --tls-cert "$work/tls.pem" --tls-key "$work/tls.key" "$@" >"$work/sim.url" 2>"$work/sim.log" &
  sim=$!
  pids+=("$sim")
  for _ in $(seq 1 300); do [ -s "$work/sim.url" ] && return; sleep 0.05; done
  fail "tfe-sim did not start: $(cat "$work/sim.log")"
}
sim_count() { # PYTHON-EXPRESSION over the sim's state `s`
  curl -fsS https://tfe.example.com/_sim/state | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"
}
authenticates() { # TOKEN-FILE
  curl -fsS -o /dev/null -H "Authorization: Bearer $(head -1 "$1")" https://tfe.example.com/api/v2/account/details
}
# UNIT-FILE: its ExecStart line as written, in the environment systemd
# would give it: a clean environment, its EnvironmentFile's lines (a "-"
# prefix: the file may be absent), STATE_DIRECTORY made with
# StateDirectoryMode, and its UMask. No systemd runs here (no PID 1), so
# the line is read from the unit and executed, not `systemd-run`.
unit_exec() {
  local unit=$1 exec_start env_file state mode umask_
  exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
  env_file=$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$unit")
  state=$(sed -n 's/^StateDirectory=//p' "$unit")
  mode=$(sed -n 's/^StateDirectoryMode=//p' "$unit")
  umask_=$(sed -n 's/^UMask=//p' "$unit")
  [ -n "$exec_start" ] && [ -n "$state" ] || fail "$unit has no ExecStart or StateDirectory"
  install -d -m "${mode:-0755}" "/var/lib/$state"
  # shellcheck disable=SC2046 # the env file's lines, one word each
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin STATE_DIRECTORY="/var/lib/$state" \
    $([ -f "$env_file" ] && cat "$env_file") \
    sh -c "umask ${umask_:-0022}; exec $exec_start"
}
random_secret() { echo "$1-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"; }
