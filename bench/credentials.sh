#!/usr/bin/env bash
# Credential benchmarks (issue #15), side by side in one run:
#  1. Injection: N HTTPS requests on loopback through the credential proxy (TLS terminated
#     with the session CA, the placeholder swapped, TLS again to the server) and N straight to
#     the same server, interleaved, each on a keep-alive connection: p50 and p90 of both and
#     what the proxy adds; then the same for new connections.
#  2. The store: `warden credentials test` on one credential, in the kernel keyring (keyutils)
#     and in gnome-keyring's Secret Service: the median of ROUNDS runs, as a person waits for it.
# Usage: sudo bench/credentials.sh [N=2000] [ROUNDS=20]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
n=${1:-2000}
rounds=${2:-20}
cargo build --locked --release --bins -q
cargo build --locked --release -q -p warden-credential-proxy --example inject_bench
warden=$PWD/target/release/warden
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. bench/lib.sh

echo "== injection: $n requests each way on loopback"
./target/release/examples/inject_bench "$n"

# Milliseconds of one `credentials test`, by the clock of this shell.
time_test() {
  local t0 t1
  t0=$(date +%s%N)
  "$warden" credentials test bench --store "$1" --state-dir "$work" >/dev/null
  t1=$(date +%s%N)
  awk -v d=$((t1 - t0)) 'BEGIN {printf "%.1f", d / 1e6}'
}

store_rounds() {
  local store=$1 r times=()
  for ((r = 0; r < rounds; r++)); do times+=("$(time_test "$store")"); done
  echo "credentials test, $store: median $(median "${times[@]}") ms over $rounds runs (target < 50 ms)"
}

echo "== the store"
export -f time_test store_rounds median
export warden work rounds
keyctl session - bash -c '
  printf %s sk-bench-0123456789 | "$warden" credentials add bench --provider bench \
    --host api.bench.test --store keyutils --replace >/dev/null
  store_rounds keyutils
  "$warden" credentials remove bench --store keyutils >/dev/null'
mkdir -p "$work/home/run"
HOME=$work/home XDG_DATA_HOME=$work/home/data XDG_RUNTIME_DIR=$work/home/run \
  dbus-run-session -- bash -c '
  printf %s bench-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  printf %s sk-bench-0123456789 | "$warden" credentials add bench --provider bench \
    --host api.bench.test --store secret-service >/dev/null
  store_rounds secret-service' 2>&1 | grep -v "dbus-daemon\["
