#!/usr/bin/env bash
# File-open benchmark (issue #4): 100,000 open+close of one file, natively and under
# `warden run` (every open observed, identical ones folded), interleaved rounds; prints the
# medians and the ratio supervised / native of the workload's own time.
# Usage: sudo bench/file_opens.sh [OPENS=100000] [ROUNDS=9]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
opens=${1:-100000}
rounds=${2:-9}
cargo build --locked --release --bins -q
warden=./target/release/warden
storm=$(realpath ./target/release/open-storm)
state=$(mktemp -d -p /var/lib)
trap 'rm -rf "$state"' EXIT
native=() supervised=()
for ((r = 0; r < rounds; r++)); do
  native+=("$("$storm" "$opens")")
  supervised+=("$("$warden" run -q --state-dir "$state" --dns-upstream 127.0.0.1:9 -- "$storm" "$opens")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
n=$(median "${native[@]}"); s=$(median "${supervised[@]}")
echo "file opens: $opens open+close of /etc/hostname, $rounds interleaved rounds, medians"
awk -v n="$n" -v s="$s" 'BEGIN {printf "  native %.1f ms  supervised %.1f ms  ratio %.3fx\n", n/1e6, s/1e6, s/n}'
counted=$(cat "$state"/sessions/*/events.jsonl | grep '"path":"/etc/hostname"' | grep -o '"count":[0-9]*' | cut -d: -f2 | awk '{s+=$1} END {print s+0}')
lost=$(cat "$state"/sessions/*/events.jsonl | grep -o '"kind":"session.end".*"lost":[0-9]*' | grep -o '[0-9]*$' | awk '{s+=$1} END {print s+0}')
echo "  supervised opens recorded (folded counts): $counted of $((opens * rounds)), lost events: $lost"
