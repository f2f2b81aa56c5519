#!/usr/bin/env bash
# Agent guard benchmark (issue 17): what `warden guard` costs the rest of the machine. N
# fork+exec of /bin/true outside any session, with no guard and with the guard in the kernel
# (listing one program by path and digest, so that every exec is looked up by file, by size and
# by path), interleaved round by round. The guard is started before and stopped after each of
# its rounds, outside the timed part. Prints the medians and the ratio guard on / guard off.
# Usage: sudo bench/agent_guard.sh [EXECS=2000] [ROUNDS=11]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
execs=${1:-2000}
rounds=${2:-11}
cargo build --locked --release --bins -q
target=${CARGO_TARGET_DIR:-target}/release
warden=$target/warden
storm=$target/exec-storm
# Root-only, as requirements must be; the listed program where nobody else writes either.
work=$(mktemp -d /var/lib/warden-bench-guard.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp /bin/true "$work/agent"
head -c 4099 /dev/urandom >>"$work/agent"
printf '[[service.agent_programs]]\npath = "%s"\nsha256 = "%s"\n' \
  "$work/agent" "$(sha256sum "$work/agent" | cut -d' ' -f1)" >"$work/requirements.toml"
chmod 644 "$work/requirements.toml"

. bench/lib.sh
# start_guard: `warden guard` in the background (its pid in `guard`), once it is in force.
start_guard() {
  rm -f "$work/guard.out"
  "$warden" guard --requirements "$work/requirements.toml" --state-dir "$work/state" \
    >"$work/guard.out" 2>&1 &
  guard=$!
  local i
  for ((i = 0; i < 600; i++)); do
    grep -qs 'kills are recorded in' "$work/guard.out" && return
    sleep 0.05
  done
  cat "$work/guard.out" >&2
  exit 1
}
stop_guard() { kill -TERM "$guard"; wait "$guard"; }
off() { "$storm" "$execs"; }
on() { start_guard; "$storm" "$execs"; stop_guard; }
interleave "$rounds" off on
# What the program itself takes per exec, from the kernel's own accounting (a round apart:
# the accounting costs time too).
stats=$(cat /proc/sys/kernel/bpf_stats_enabled)
echo 1 >/proc/sys/kernel/bpf_stats_enabled
start_guard
"$storm" "$execs" >/dev/null
per_exec=$("$target/prog-stats" warden_guard | awk '{printf "%.0f ns per exec over %d execs", $3 / $2, $2}')
stop_guard
echo "$stats" >/proc/sys/kernel/bpf_stats_enabled
# The guard was in force in its rounds: the listed program is killed, and recorded.
start_guard
status=0; "$work/agent" || status=$?
stop_guard
killed=$(grep -c '"kind":"guard.killed"' "$work/state/guard/events.jsonl" || true)
echo "agent guard: $execs fork+exec of /bin/true outside any session, $rounds interleaved rounds"
report "workload    " "guard off" "guard on"
echo "  the guard's program: $per_exec (every exec of the machine meanwhile)"
echo "  the listed program started with the guard on: exit status $status (137: killed), guard.killed records: $killed"
