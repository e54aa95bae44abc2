#!/usr/bin/env bash
# Builds every release artifact into dist/:
#   tfe-bootstrap-<v>-{x86_64,aarch64}-linux.tar.gz   static musl binary + docs
#   tfe-bootstrap_<v>_{amd64,arm64}.deb               dpkg-deb
#   tfe-bootstrap-<v>-1.{x86_64,aarch64}.rpm          rpmbuild
#   SHA256SUMS
#
# Toolchain (why these): Debian's musl-tools (musl-gcc) and
# gcc-aarch64-linux-gnu compile ring's C for the two musl targets and link
# them; rustc's musl targets bring their own libc and start files, so no
# cross sysroot is needed. dpkg-deb and rpmbuild (Debian's `rpm`) are the
# native packagers: nothing to compile, and their output is what dpkg and
# rpm read. `--install` installs what is missing (apt-get, rustup);
# without it the script says exactly what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

install=no
[ "${1:-}" = "--install" ] && install=yes

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)

missing_apt=()
command -v musl-gcc >/dev/null || missing_apt+=(musl-tools)
command -v aarch64-linux-gnu-gcc >/dev/null || missing_apt+=(gcc-aarch64-linux-gnu)
command -v dpkg-deb >/dev/null || missing_apt+=(dpkg)
command -v rpmbuild >/dev/null || missing_apt+=(rpm)
command -v file >/dev/null || missing_apt+=(file)
command -v readelf >/dev/null || missing_apt+=(binutils)
missing_targets=()
for t in "${targets[@]}"; do
  rustup target list --installed 2>/dev/null | grep -qx "$t" || missing_targets+=("$t")
done
if [ ${#missing_apt[@]} -gt 0 ] || [ ${#missing_targets[@]} -gt 0 ]; then
  if [ "$install" = yes ]; then
    if [ ${#missing_apt[@]} -gt 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_apt[@]}"
    fi
    [ ${#missing_targets[@]} -gt 0 ] && rustup target add "${missing_targets[@]}"
  else
    echo "release.sh: missing:" >&2
    for p in "${missing_apt[@]}"; do echo "  - $p (apt-get install $p)" >&2; done
    for t in "${missing_targets[@]}"; do echo "  - Rust target $t (rustup target add $t)" >&2; done
    echo "Or run scripts/release.sh --install (as root) to install them." >&2
    exit 2
  fi
fi

commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
export TFE_BOOTSTRAP_COMMIT="$commit"
# Fully static: no ELF interpreter, no NEEDED entries (not static-pie).
export RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static"
export CC_x86_64_unknown_linux_musl=musl-gcc
export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
for t in "${targets[@]}"; do
  echo "release.sh: building $t" >&2
  cargo build --release --locked --target "$t" --bin tfe-bootstrap
done

rm -rf dist
mkdir -p dist/stage
host_bin=target/x86_64-unknown-linux-musl/release/tfe-bootstrap

# What every artifact carries besides the binary, generated once.
gen=dist/stage/generated
mkdir -p "$gen/completions"
"$host_bin" man > "$gen/tfe-bootstrap.1"
"$host_bin" completions bash > "$gen/completions/tfe-bootstrap.bash"
"$host_bin" completions zsh > "$gen/completions/_tfe-bootstrap"
"$host_bin" completions fish > "$gen/completions/tfe-bootstrap.fish"

for t in "${targets[@]}"; do
  arch=${t%%-*}
  bin=target/$t/release/tfe-bootstrap
  # The checks the release promises: static, small.
  file "$bin" | grep -q "statically linked" || { echo "release.sh: $bin is not statically linked" >&2; exit 1; }
  if readelf -l "$bin" | grep -q INTERP || readelf -d "$bin" | grep -q NEEDED; then
    echo "release.sh: $bin has an ELF interpreter or NEEDED entries" >&2; exit 1
  fi
  size=$(stat -c %s "$bin")
  [ "$size" -le 4000000 ] || { echo "release.sh: $bin is $size bytes (over 4 MB)" >&2; exit 1; }

  # Tarball: one directory.
  name=tfe-bootstrap-$version-$arch-linux
  d=dist/stage/$name
  mkdir -p "$d"/config "$d"/systemd "$d"/store
  install -m 0755 "$bin" "$d/tfe-bootstrap"
  install -m 0644 "$gen/tfe-bootstrap.1" "$d/"
  cp -r "$gen/completions" "$d/"
  install -m 0644 config/*.toml "$d/config/"
  install -m 0644 scripts/systemd/* "$d/systemd/"
  install -m 0755 scripts/store/* "$d/store/"
  install -m 0644 README.md LICENSE CHANGELOG.md "$d/"
  tar -C dist/stage --owner=0 --group=0 --numeric-owner -czf "dist/$name.tar.gz" "$name"

  # The package tree: the same files where a distribution keeps them.
  root=dist/stage/root-$arch
  mkdir -p "$root"/usr/bin "$root"/usr/lib/systemd/system "$root"/usr/share/man/man1 \
    "$root"/usr/share/bash-completion/completions "$root"/usr/share/zsh/vendor-completions \
    "$root"/usr/share/fish/vendor_completions.d "$root"/usr/lib/tfe-bootstrap/store \
    "$root"/usr/share/doc/tfe-bootstrap/examples
  install -m 0755 "$bin" "$root/usr/bin/tfe-bootstrap"
  for u in scripts/systemd/*; do
    sed 's|/usr/local/bin/tfe-bootstrap|/usr/bin/tfe-bootstrap|; s|/opt/tfe-bootstrap/store/|/usr/lib/tfe-bootstrap/store/|' \
      "$u" > "$root/usr/lib/systemd/system/$(basename "$u")"
    chmod 0644 "$root/usr/lib/systemd/system/$(basename "$u")"
  done
  gzip -9n < "$gen/tfe-bootstrap.1" > "$root/usr/share/man/man1/tfe-bootstrap.1.gz"
  install -m 0644 "$gen/completions/tfe-bootstrap.bash" "$root/usr/share/bash-completion/completions/tfe-bootstrap"
  install -m 0644 "$gen/completions/_tfe-bootstrap" "$root/usr/share/zsh/vendor-completions/"
  install -m 0644 "$gen/completions/tfe-bootstrap.fish" "$root/usr/share/fish/vendor_completions.d/"
  install -m 0755 scripts/store/* "$root/usr/lib/tfe-bootstrap/store/"
  install -m 0644 README.md CHANGELOG.md "$root/usr/share/doc/tfe-bootstrap/"
  install -m 0644 LICENSE "$root/usr/share/doc/tfe-bootstrap/copyright"
  install -m 0644 config/*.toml "$root/usr/share/doc/tfe-bootstrap/examples/"

  # .deb
  debarch=$([ "$arch" = x86_64 ] && echo amd64 || echo arm64)
  debroot=dist/stage/deb-$arch
  cp -a "$root" "$debroot"
  mkdir -p "$debroot/DEBIAN"
  sed "s/@VERSION@/$version/; s/@ARCH@/$debarch/; s/@SIZE@/$(du -sk "$root" | cut -f1)/" \
    scripts/packaging/control > "$debroot/DEBIAN/control"
  install -m 0755 scripts/packaging/deb/postinst scripts/packaging/deb/prerm scripts/packaging/deb/postrm "$debroot/DEBIAN/"
  dpkg-deb --root-owner-group -Zxz --build "$debroot" "dist/tfe-bootstrap_${version}_$debarch.deb" >/dev/null

  # .rpm (prebuilt files: no compile, no strip, no debug package)
  rpmtop=$(mktemp -d)
  rpmbuild -bb --quiet --target "$arch-linux" \
    --define "_topdir $rpmtop" --define "_version $version" --define "_stage $(pwd)/$root" \
    scripts/packaging/tfe-bootstrap.spec
  cp "$rpmtop"/RPMS/*/tfe-bootstrap-"$version"-1."$arch".rpm dist/
  rm -rf "$rpmtop"
done
rm -rf dist/stage
(cd dist && sha256sum -- *.tar.gz *.deb *.rpm > SHA256SUMS)
echo "release.sh: dist/ holds:" >&2
ls -l dist >&2
