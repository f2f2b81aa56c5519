#!/usr/bin/env bash
# A real build (issue #13): `cargo clean; cargo build --offline` of a small crate that uses
# serde (with derive) and serde_json, from the local registry cache, natively and under
# `warden run`, interleaved rounds. The workload is a compiler's: many execs (rustc, cc, the
# build scripts), thousands of opens, much CPU, little else. Prints the medians and the ratio
# supervised / native of the build's own time.
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
crate=$work/crate
mkdir -p "$crate/src"
cat >"$crate/Cargo.toml" <<'TOML'
[package]
name = "bench-build"
version = "0.1.0"
edition = "2021"

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
TOML
cat >"$crate/src/main.rs" <<'RS'
#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct Point { x: i64, y: i64, label: String }
fn main() {
    let p: Point = serde_json::from_str(r#"{"x":1,"y":2,"label":"a"}"#).unwrap();
    println!("{}", serde_json::to_string(&p).unwrap());
}
RS
# The build's inputs come from this machine's registry cache only.
(cd "$crate" && cargo generate-lockfile --offline -q)
# The script each side runs: it times the build itself, so session start-up is left out.
cat >"$work/build.sh" <<'SH'
#!/bin/sh
set -e
cd "$1"
cargo clean -q
t0=$(date +%s%N)
cargo build --offline -q
echo $(($(date +%s%N) - t0))
SH
chmod +x "$work/build.sh"
state=$work/state
mkdir -p "$state"
. bench/lib.sh
nat() { "$work/build.sh" "$crate"; }
sup() {
  (cd "$crate" && "$warden" run -q --state-dir "$state" --dns-upstream 127.0.0.1:9 "${extra[@]}" \
    -- "$work/build.sh" "$crate")
}
nat >/dev/null  # warm the page cache
interleave "$rounds" nat sup
execs=$(cat "$state"/sessions/*/events.jsonl | grep -c '"kind":"exec"' || true)
opens=$(cat "$state"/sessions/*/events.jsonl | grep '"kind":"file.open"' | grep -o '"count":[0-9]*' | cut -d: -f2 | awk '{s+=$1} END {print s+0}')
lost=$(cat "$state"/sessions/*/events.jsonl | grep -o '"kind":"session.end".*"lost":[0-9]*' | grep -o '[0-9]*$' | awk '{s+=$1} END {print s+0}')
echo "cargo build: serde + serde_json from the registry cache, $rounds interleaved rounds ${extra[*]}"
report "build  "
echo "  rounds (ms): native ${native[*]} supervised ${supervised[*]}" | awk "{for(i=1;i<=NF;i++) if (\$i ~ /^[0-9]+$/) \$i=int(\$i/1e6); print}"
echo "  supervised: $((execs / rounds)) execs and $((opens / rounds)) opens recorded per build, lost events: $lost"
