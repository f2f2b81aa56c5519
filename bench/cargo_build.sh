#!/usr/bin/env bash
# A real build (issue #13): `cargo clean; cargo build --offline` of a small crate that uses
# serde (with derive) and serde_json, from the local registry cache, natively and under
# `warden run`, interleaved rounds. The workload is a compiler's: many execs (rustc, cc, the
# build scripts), thousands of opens, much CPU, little else. Prints the medians and the ratio
# supervised / native of the build's own time, and each round's times (a 2-core VM's builds
# vary by several percent from round to round).
# Usage: sudo bench/cargo_build.sh [ROUNDS=7] [-- WARDEN RUN OPTIONS...]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
rounds=${1:-7}
shift || true
[ "${1:-}" != "--" ] || shift
extra=("$@")
cargo build --locked --release --bins -q
warden=$(realpath ./target/release/warden)
work=$(mktemp -d -p /var/lib warden-bench-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
. bench/lib.sh
make_build_crate "$work"
state=$work/state
mkdir -p "$state"
nat() { "$work/build.sh" "$work/crate"; }
sup() {
  (cd "$work/crate" && "$warden" run -q --state-dir "$state" --dns-upstream 127.0.0.1:9 \
    "${extra[@]}" -- "$work/build.sh" "$work/crate")
}
nat >/dev/null # warm the page cache
interleave "$rounds" nat sup
execs=$(cat "$state"/sessions/*/events.jsonl | grep -c '"kind":"exec"' || true)
opens=$(cat "$state"/sessions/*/events.jsonl | grep '"kind":"file.open"' | grep -o '"count":[0-9]*' | cut -d: -f2 | awk '{s+=$1} END {print s+0}')
lost=$(cat "$state"/sessions/*/events.jsonl | grep -o '"kind":"session.end".*"lost":[0-9]*' | grep -o '[0-9]*$' | awk '{s+=$1} END {print s+0}')
echo "cargo build: serde + serde_json from the registry cache, $rounds interleaved rounds ${extra[*]}"
report "build  "
echo "  rounds (ms): native $(for t in "${native[@]}"; do printf ' %d' $((t / 1000000)); done)," \
  "supervised $(for t in "${supervised[@]}"; do printf ' %d' $((t / 1000000)); done)"
echo "  supervised: $((execs / rounds)) execs and $((opens / rounds)) opens recorded per build, lost events: $lost"
