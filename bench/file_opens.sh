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
. bench/lib.sh
nat() { "$storm" "$opens"; }
sup() { "$warden" run -q --state-dir "$state" --dns-upstream 127.0.0.1:9 "${extra[@]}" -- "$storm" "$opens"; }
extra=()
interleave "$rounds" nat sup
echo "file opens: $opens open+close of /etc/hostname, $rounds interleaved rounds"
report "workspace-write     "
extra=(--sandbox-mode danger-full-access)
interleave "$rounds" nat sup
report "danger-full-access  "
counted=$(cat "$state"/sessions/*/events.jsonl | grep '"path":"/etc/hostname"' | grep -o '"count":[0-9]*' | cut -d: -f2 | awk '{s+=$1} END {print s+0}')
lost=$(cat "$state"/sessions/*/events.jsonl | grep -o '"kind":"session.end".*"lost":[0-9]*' | grep -o '[0-9]*$' | awk '{s+=$1} END {print s+0}')
echo "  supervised opens recorded (folded counts): $counted of $((opens * rounds * 2)), lost events: $lost"
