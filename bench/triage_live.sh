#!/usr/bin/env bash
# Live triage's cost (issue #16): the exec storm (N fork+exec of /bin/true) under `warden run`
# with live triage off (requirements `[triage] live = false`) and on (the default), interleaved
# round by round. Prints the medians and the ratio on / off (target: at most 1.02x), and checks
# that the sessions with live triage did run it (their logs are triaged as they are written).
# Usage: sudo bench/triage_live.sh [EXECS=2000] [ROUNDS=11]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
execs=${1:-2000}
rounds=${2:-11}
cargo build --locked --release --bins -q
warden=./target/release/warden
storm=./target/release/exec-storm
# Requirements files are trusted only where no one else can write (not under /tmp).
work=$(mktemp -d -p /var/lib warden-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/off" "$work/on"
printf '[triage]\nlive = false\n' > "$work/off.toml"
printf '[triage]\nlive = true\n' > "$work/on.toml"
chmod 644 "$work"/*.toml

. bench/lib.sh
now() { date +%s%N; }
run() { "$warden" run -q --state-dir "$work/$1" --requirements "$work/$1.toml" -- "$storm" "$execs"; }
off() { run off; }
on() { run on; }
interleave "$rounds" off on
echo "live triage: $execs fork+exec of /bin/true under warden run, $rounds interleaved rounds"
report "workload    " "triage off" "triage on"
for side in off on; do
  sessions=$(ls "$work/$side/sessions" | wc -l)
  echo "  $side: $sessions sessions, $(cat "$work/$side"/sessions/*/events.jsonl | wc -l) records"
done
