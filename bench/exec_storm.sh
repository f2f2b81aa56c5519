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

now() { date +%s%N; }
native_in=() native_e2e=() warden_in=() warden_e2e=()
for ((r = 0; r < rounds; r++)); do
  t0=$(now); native_in+=("$("$storm" "$execs")"); native_e2e+=($(($(now) - t0)))
  t0=$(now); warden_in+=("$("$warden" run -q --state-dir "$state" -- "$storm" "$execs")")
  warden_e2e+=($(($(now) - t0)))
done
# Every supervised exec must be in the logs (or counted lost): a benchmark that dropped
# events would be measuring the wrong thing.
recorded=$(cat "$state"/sessions/*/events.jsonl | grep '"kind":"exec"' | grep -c '"filename":"/bin/true"' || true)
lost=$(cat "$state"/sessions/*/events.jsonl | grep -o '"kind":"session.end".*"lost":[0-9]*' | grep -o '[0-9]*$' | awk '{s += $1} END {print s + 0}')

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { awk -v ns="$1" 'BEGIN {printf "%.1f ms", ns / 1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3fx", a / b}'; }
ni=$(median "${native_in[@]}"); wi=$(median "${warden_in[@]}")
ne=$(median "${native_e2e[@]}"); we=$(median "${warden_e2e[@]}")
echo "exec storm: $execs fork+exec of /bin/true, $rounds interleaved rounds, medians"
printf '  workload    native %-10s  supervised %-10s  ratio %s\n' "$(ms "$ni")" "$(ms "$wi")" "$(ratio "$wi" "$ni")"
printf '  end to end  native %-10s  supervised %-10s  ratio %s\n' "$(ms "$ne")" "$(ms "$we")" "$(ratio "$we" "$ne")"
echo "  supervised execs recorded: $recorded of $((execs * rounds)), lost events: $lost"
