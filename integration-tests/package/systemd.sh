#!/usr/bin/env bash
# The Debian package under a real systemd: a fresh Debian 12 (debootstrap + systemd, cached)
# booted under QEMU with a stock Debian kernel, where the guest (guest-systemd.sh) installs
# the package with apt, and checks what systemd does with it: the socket enabled and
# listening, wardend started by the first connection (socket activation), a session of a
# member of `warden` confined and recorded, `systemctl restart wardend` in the middle of a
# session (it goes on, confined, and is listed by the new daemon), and removal. Prints
# `systemd: ok` at the end; exits non-zero on any failed check.
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=$(realpath "${1:?usage: systemd.sh PACKAGE.deb}")
KERNEL=${WARDEN_PACKAGE_KERNEL:-linux-image-6.12.117+deb12-amd64}
BASE=/var/cache/warden-package/bookworm
ROOT=/var/cache/warden-package/bookworm-systemd
bash integration-tests/package/prepare.sh

if [ ! -x "$ROOT/lib/systemd/systemd" ]; then
  echo "systemd: making $ROOT (Debian 12 with systemd)"
  rm -rf "$ROOT.tmp"
  cp -a "$BASE" "$ROOT.tmp"
  cp /etc/resolv.conf "$ROOT.tmp/etc/resolv.conf"
  mount -t proc proc "$ROOT.tmp/proc"
  trap 'umount "$ROOT.tmp/proc" 2>/dev/null || true' EXIT
  chroot "$ROOT.tmp" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends systemd systemd-sysv libseccomp2 adduser' \
    >"$ROOT.log" 2>&1 || { tail -20 "$ROOT.log"; exit 1; }
  umount "$ROOT.tmp/proc"
  trap - EXIT
  # The guest's test runs once the system is up; its script comes from the host's tree.
  cat >"$ROOT.tmp/etc/systemd/system/warden-package-test.service" <<'UNIT'
[Unit]
Description=The Warden package test
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'exec /bin/sh "/host$(sed -n "s/.*warden.guest=\\([^ ]*\\).*/\\1/p" /proc/cmdline)"'
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0

[Install]
WantedBy=multi-user.target
UNIT
  ln -s ../warden-package-test.service "$ROOT.tmp/etc/systemd/system/multi-user.target.wants/warden-package-test.service"
  # No logins on the console: the test owns it.
  ln -sf /dev/null "$ROOT.tmp/etc/systemd/system/serial-getty@ttyS0.service"
  ln -sf /dev/null "$ROOT.tmp/etc/systemd/system/getty@tty1.service"
  echo warden-vm >"$ROOT.tmp/etc/hostname"
  mv "$ROOT.tmp" "$ROOT"
fi

initrd=$(bash integration-tests/vm/run.sh --fetch-only --kernel "$KERNEL" 2>&1 | sed -n "s/^.*vm:.* $KERNEL: //p" | tail -1)
[ -f "$initrd" ] || { echo "systemd: no initramfs for $KERNEL ($initrd)"; exit 1; }
vmlinuz=$(ls /var/cache/warden-vm/"$KERNEL"/boot/vmlinuz-*)
out=target/vm/package-systemd
mkdir -p "$out"
guest=$(realpath integration-tests/package/guest-systemd.sh)
echo "systemd: booting $KERNEL with systemd (console: $out/console.log)"
started=$SECONDS
timeout --kill-after=10 900 qemu-system-x86_64 \
  -accel tcg,thread=single -cpu max -smp 2 -m 2G \
  -kernel "$vmlinuz" -initrd "$initrd" \
  -append "console=ttyS0 panic=-1 quiet warden.sysroot=$ROOT warden.guest=$guest warden.deb=$deb" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -nodefaults -display none -no-reboot -serial "file:$out/console.log" -monitor none \
  </dev/null >"$out/qemu.log" 2>&1 || true
echo "systemd: the guest ran $((SECONDS - started)) s"
grep -a '^WARDEN-PKG' "$out/console.log" | sed 's/^/  /' || true
grep -aq '^WARDEN-PKG-OK' "$out/console.log" || { tail -40 "$out/console.log"; echo "systemd: FAILED"; exit 1; }
echo "systemd: ok"
