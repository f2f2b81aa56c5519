#!/usr/bin/env bash
# Fuzzes the requirements parser, merger and resolver for a bounded time; exits non-zero on a
# crash (the input is kept under requirements/fuzz/artifacts/).
# Usage: scripts/fuzz-requirements.sh [SECONDS]   (default 60)
# Needs a nightly toolchain and cargo-fuzz: rustup toolchain install nightly; cargo install cargo-fuzz
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz-requirements: needs cargo-fuzz on a nightly toolchain" >&2
    exit 1
fi

cd "$root/requirements/fuzz"
target=parse_merge_resolve
mkdir -p "corpus/$target"
# The corpus grows across runs; the committed seeds start it off.
cargo +nightly fuzz run "$target" "corpus/$target" seeds -- \
    -max_total_time="$seconds" -max_len=16384 -timeout=10
