#!/usr/bin/env bash
# One-time (idempotent) setup of a Debian 12 machine for building, running and testing Warden.
# Installs only from Debian apt and crates.io; never asks rustup to download anything.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

BPF_LINKER_VERSION=0.13.0
APT_PACKAGES=(
  # bpf-linker's LLVM and the Debian Rust compiler with a prebuilt core for bpfel-unknown-none
  llvm-22-dev libpolly-22-dev libzstd-dev zlib1g-dev libxml2-dev libffi-dev libncurses-dev
  rustc-web cargo-web libstd-rust-web-dev-bpf
  # user-space build and test dependencies
  libseccomp-dev pkg-config dnsmasq-base curl git
  # pip installs rotel, the OpenTelemetry collector of the telemetry tests
  python3-pip
)

# The stock-kernel VM matrix (integration-tests/vm/): QEMU's software emulation and a busybox
# initramfs. Without recommends: they pull in a desktop's worth of packages.
VM_PACKAGES=(qemu-system-x86 busybox-static cpio xz-utils)

# The credential store's keyrings: a Secret Service (gnome-keyring on a private D-Bus) and the
# kernel's keyutils, with their command-line clients. Without recommends: a desktop again.
KEYRING_PACKAGES=(dbus dbus-daemon gnome-keyring libsecret-tools keyutils)

# The triage HTML report is checked in a real headless browser (a screenshot and its DOM).
BROWSER_PACKAGES=(chromium)

# The Debian package is tested on a throw-away Debian 12 made by debootstrap.
PACKAGE_TEST_PACKAGES=(debootstrap)

# Installs those of the packages named after `--` that are missing; OPTIONS go to apt-get.
apt_install() {
  local what=$1 options=() missing=() p
  shift
  while [ "$1" != "--" ]; do options+=("$1"); shift; done
  shift
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "apt: $what present"
    return
  fi
  log "apt: installing ${missing[*]} ($what)"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${options[@]}" "${missing[@]}"
}
apt_install "build and test packages" -- "${APT_PACKAGES[@]}"
apt_install "VM matrix packages" --no-install-recommends -- "${VM_PACKAGES[@]}"
apt_install "keyring packages" --no-install-recommends -- "${KEYRING_PACKAGES[@]}"
apt_install "browser packages" --no-install-recommends -- "${BROWSER_PACKAGES[@]}"
apt_install "package test packages" --no-install-recommends -- "${PACKAGE_TEST_PACKAGES[@]}"

# rustup's cargo must come before Debian's /usr/bin/cargo.
export PATH="$HOME/.cargo/bin:$PATH"

if bpf-linker --version 2>/dev/null | grep -q "$BPF_LINKER_VERSION"; then
  log "bpf-linker $BPF_LINKER_VERSION present"
else
  log "building bpf-linker $BPF_LINKER_VERSION against LLVM 22"
  # LLVM_PREFIX matters: /usr/bin/llvm-config is LLVM 14.
  LLVM_PREFIX=/usr/lib/llvm-22 LLVM_SYS_221_PREFIX=/usr/lib/llvm-22 \
    cargo install "bpf-linker@$BPF_LINKER_VERSION" --locked --no-default-features --features llvm-22
fi

# cargo-fuzz runs the requirements fuzz target (on the machine's nightly toolchain).
CARGO_FUZZ_VERSION=0.13.2
if cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  log "cargo-fuzz $CARGO_FUZZ_VERSION present"
elif rustup toolchain list | grep -q '^nightly'; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install "cargo-fuzz@$CARGO_FUZZ_VERSION" --locked
else
  log "no nightly toolchain: the requirements fuzz target cannot run here"
fi

# The telemetry tests send to a real OpenTelemetry collector: rotel, from PyPI.
ROTEL_VERSION=0.0.1a15
if python3 -m pip show rotel 2>/dev/null | grep -q "^Version: $ROTEL_VERSION$"; then
  log "rotel $ROTEL_VERSION present"
else
  log "installing rotel $ROTEL_VERSION (OpenTelemetry collector for the telemetry tests)"
  # A Debian-managed Python refuses plain pip installs (PEP 668).
  python3 -m pip install -q "rotel==$ROTEL_VERSION" \
    || python3 -m pip install -q --break-system-packages "rotel==$ROTEL_VERSION"
fi

# aya-build runs `rustup run debian-web cargo` to build the kernel programs.
if rustup toolchain list | grep -q '^debian-web'; then
  log "rustup toolchain debian-web registered"
else
  log "registering the Debian compiler as rustup toolchain debian-web"
  rustup toolchain link debian-web /usr
fi
# The VM matrix's stock kernels (cached in /var/cache/warden-vm) and their initramfs images.
as_root bash integration-tests/vm/run.sh --fetch-only
# The package test's Debian 12 root (cached in /var/cache/warden-package).
as_root bash integration-tests/package/prepare.sh
log "done"
