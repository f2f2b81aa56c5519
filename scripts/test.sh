#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the integration tests, which run as
# root on the real kernel (real eBPF programs, cgroups and processes).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || {
    echo "scripts/test.sh: the integration tests load eBPF programs and create cgroups: run as root" >&2
    exit 1
  }
  exec sudo bash "$0" "$@"
fi
set -x
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# The integration tests run the `warden` binary: build it first.
cargo build --locked --bins
cargo test --locked --no-fail-fast
# The requirements parser, merger and resolver must not panic on any input (bounded time).
bash scripts/fuzz-requirements.sh 60
# The Debian package, installed, used, upgraded under a live session and purged on a
# throw-away Debian 12.
deb=$(bash scripts/package-deb.sh)
bash integration-tests/package/run.sh "$deb"
# ... and under a real systemd (socket activation, systemctl restart mid-session), in a VM.
bash integration-tests/package/systemd.sh "$deb"
# The kernel-dependent tests again, inside VMs booted with the stock kernels users run.
bash integration-tests/vm/run.sh
