#!/usr/bin/env bash
# Exec storm benchmark (issue #2): N fork+exec of /bin/true, natively and under `warden run`,
# interleaved round by round, so that both see the same machine state. Prints the medians and
# the ratio supervised / native, for the workload alone (timed inside the workload) and end to
# end (including Warden's start-up: loading programs, creating the cgroup, tearing down).
# Usage: sudo bench/exec_storm.sh [EXECS=2000] [ROUNDS=11]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
execs=${1:-2000}
rounds=${2:-11}
cargo build --locked --release --bins -q
warden=./target/release/warden
storm=./target/release/exec-storm
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT

. bench/lib.sh
now() { date +%s%N; }
# Each prints the workload's own time; the time from start to exit goes to a side file.
nat() { local t0; t0=$(now); "$storm" "$execs"; echo $(($(now) - t0)) >>"$state/native_e2e"; }
sup() {
  local t0; t0=$(now); "$warden" run -q --state-dir "$state" -- "$storm" "$execs"
  echo $(($(now) - t0)) >>"$state/supervised_e2e"
}
interleave "$rounds" nat sup
# Every supervised exec must be in the logs (or counted lost): a benchmark that dropped
# events would be measuring the wrong thing.
recorded=$(cat "$state"/sessions/*/events.jsonl | grep '"kind":"exec"' | grep -c '"filename":"/bin/true"' || true)
lost=$(cat "$state"/sessions/*/events.jsonl | grep -o '"kind":"session.end".*"lost":[0-9]*' | grep -o '[0-9]*$' | awk '{s += $1} END {print s + 0}')
echo "exec storm: $execs fork+exec of /bin/true, $rounds interleaved rounds"
report "workload    "
native=($(cat "$state/native_e2e")) supervised=($(cat "$state/supervised_e2e"))
report "end to end  "
echo "  supervised execs recorded: $recorded of $((execs * rounds)), lost events: $lost"
