#!/usr/bin/env bash
# Builds the Debian package target/debian/warden_<version>_<arch>.deb from a release build:
# the binaries, wardend (a link to warden), the systemd units (socket activation), a default
# /etc/warden/requirements.toml, man pages and shell completions generated from the command
# line itself, and the documents. Prints the package's path last.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
cargo build --release --locked -p warden -p warden-agent -p warden-agent-api --bins >&2

stage=target/debian/warden_${version}_${arch}
rm -rf "$stage"
install -d "$stage/DEBIAN"
for bin in warden warden-launcher warden-agent-report; do
  install -D -m 0755 "target/release/$bin" "$stage/usr/bin/$bin"
done
install -d "$stage/usr/sbin"
ln -s ../bin/warden "$stage/usr/sbin/wardend"
install -D -m 0644 packaging/systemd/wardend.service "$stage/lib/systemd/system/wardend.service"
install -D -m 0644 packaging/systemd/wardend.socket "$stage/lib/systemd/system/wardend.socket"
install -D -m 0644 packaging/requirements.toml "$stage/etc/warden/requirements.toml"
install -d -m 0755 "$stage/etc/warden/managed.d"

generated=$(mktemp -d)
trap 'rm -rf "$generated"' EXIT
target/release/warden manuals --out "$generated"
install -d "$stage/usr/share/man/man1"
for page in "$generated"/man1/*.1; do
  gzip -9n < "$page" > "$stage/usr/share/man/man1/$(basename "$page").gz"
done
install -D -m 0644 "$generated/completions/warden.bash" "$stage/usr/share/bash-completion/completions/warden"
install -D -m 0644 "$generated/completions/_warden" "$stage/usr/share/zsh/vendor-completions/_warden"
install -D -m 0644 "$generated/completions/warden.fish" "$stage/usr/share/fish/vendor_completions.d/warden.fish"
install -d "$stage/usr/share/doc/warden"
cp README.md docs/*.md "$stage/usr/share/doc/warden/"

for script in postinst prerm postrm; do
  install -m 0755 "packaging/debian/$script" "$stage/DEBIAN/$script"
done
echo /etc/warden/requirements.toml > "$stage/DEBIAN/conffiles"
installed_kib=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: warden
Version: $version
Architecture: $arch
Maintainer: Warden maintainers <warden@localhost>
Depends: libc6 (>= 2.36), libseccomp2 (>= 2.5), adduser
Recommends: systemd
Section: admin
Priority: optional
Installed-Size: $installed_kib
Description: sandbox supervisor for AI coding agents
 Warden runs a coding agent in a kernel-enforced sandbox (eBPF, Landlock, seccomp):
 a network allowlist by domain, an exec gate with approvals, protected credentials,
 and a tamper-evident audit log of every exec, file call and connection of the
 agent's process tree, sent to OTLP and triaged for what an honest task would not do.
 wardend, a systemd service, lets users without root start supervised sessions.
CONTROL

out="target/debian/warden_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$out" >&2
echo "$out"
