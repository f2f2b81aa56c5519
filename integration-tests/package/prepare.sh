#!/usr/bin/env bash
# The package test's throw-away Debian 12: a minimal root file system made once with
# debootstrap and cached in /var/cache/warden-package/bookworm (each test run mounts an
# overlay on it and throws the upper layer away).
set -euo pipefail
CACHE=/var/cache/warden-package
MIRROR=${WARDEN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ -x "$CACHE/bookworm/usr/bin/apt-get" ]; then
  echo "package test: Debian 12 root present in $CACHE/bookworm"
  exit 0
fi
mkdir -p "$CACHE"
rm -rf "$CACHE/bookworm.tmp"
echo "package test: debootstrap of Debian 12 (minbase) into $CACHE/bookworm"
debootstrap --variant=minbase bookworm "$CACHE/bookworm.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
  || { tail -20 "$CACHE/debootstrap.log"; exit 1; }
mv "$CACHE/bookworm.tmp" "$CACHE/bookworm"
