#!/usr/bin/env bash
# Hook tiers side by side (issue #13): one workload natively and under `warden run
# --hook-tier T` for every tier this kernel gives, in interleaved rounds (the order rotates
# each round). Prints each side's median and its ratio to native. Run it in the VM to compare
# tiers on a stock kernel (bench/vm.sh), or here for the tracepoint tier.
#
#   sudo bench/hook_tiers.sh opens    [N=100000] [ROUNDS=7]  N open+close of a tmpfs file
#   sudo bench/hook_tiers.sh execs    [N=2000]   [ROUNDS=7]  N fork+exec of /bin/true
#   sudo bench/hook_tiers.sh connects [N=10000]  [ROUNDS=7]  N TCP connects to an allowed loopback listener
#   sudo bench/hook_tiers.sh build    [-]        [ROUNDS=5]  cargo build of serde + serde_json
#
# Sessions run in workspace-write mode (Landlock on); WARDEN_BENCH_ARGS adds options to
# every `warden run` (e.g. "--sandbox-mode danger-full-access").
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
workload=${1:?usage: bench/hook_tiers.sh opens|execs|connects|build [N] [ROUNDS]}
n=${2:-}
rounds=${3:-}
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
[ -x ./target/release/warden ] || cargo build --locked --release --bins -q
warden=$(realpath ./target/release/warden)
rel=$(realpath ./target/release)
work=$(mktemp -d -p /var/lib warden-bench-tiers.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
. bench/lib.sh
read -r -a args <<<"${WARDEN_BENCH_ARGS:-}"
args+=(--dns-upstream 127.0.0.1:9)
case "$workload" in
opens)
  n=${n:-100000}
  file=/dev/shm/warden-bench-open
  : >"$file"
  cmd=("$rel/open-storm" "$n" "$file")
  what="$n open+close of a tmpfs file" ;;
execs)
  n=${n:-2000}
  cmd=("$rel/exec-storm" "$n")
  what="$n fork+exec of /bin/true" ;;
connects)
  n=${n:-10000}
  "$rel/net-bench" serve 127.0.9.10:7001 & pids+=($!)
  sleep 0.3
  args+=(--no-default-domains --allow-cidr 127.0.9.10)
  cmd=("$rel/net-bench" connect 127.0.9.10:7001 "$n")
  what="$n TCP connects to an allowed loopback listener" ;;
build)
  make_build_crate "$work"
  "$work/build.sh" "$work/crate" >/dev/null # warm the page cache
  cmd=("$work/build.sh" "$work/crate")
  rounds=${rounds:-5}
  what="cargo build of serde + serde_json (offline)" ;;
*) echo "unknown workload $workload" >&2; exit 2 ;;
esac
rounds=${rounds:-7}

# The tiers this kernel gives: those a session accepts.
tiers=()
for t in bpf_lsm fentry tracepoint; do
  if "$warden" run -q --hook-tier "$t" --state-dir "$work/probe" "${args[@]}" -- true 2>/dev/null; then
    tiers+=("$t")
  fi
done
side_native() { (cd "$work" && "${cmd[@]}"); }
fns=(side_native)
names=(native)
for t in "${tiers[@]}"; do
  eval "side_$t() { (cd \"\$work\" && \"\$warden\" run -q --hook-tier $t --state-dir \"\$work/state-$t\" \"\${args[@]}\" -- \"\${cmd[@]}\"); }"
  fns+=("side_$t")
  names+=("$t")
done
interleave_sides "$rounds" "${fns[@]}"
report_sides "$workload: $what, $rounds rounds, $(uname -r) ${WARDEN_BENCH_ARGS:-}" "${names[@]}"
for t in "${tiers[@]}"; do
  lost=$(cat "$work/state-$t"/sessions/*/events.jsonl | grep -o '"kind":"session.end".*"lost":[0-9]*' | grep -o '[0-9]*$' | awk '{s+=$1} END {print s+0}')
  echo "  $t: events lost: $lost"
done
