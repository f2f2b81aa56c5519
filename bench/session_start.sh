#!/usr/bin/env bash
# Session start and teardown (issue #17): ROUNDS of `warden run -- /bin/true` against native
# `/bin/true`, interleaved round by round. Prints both medians, their ratio and their
# difference (what a session costs around its command), then where the supervised time goes:
# the median of each phase Warden times at debug level (`WARDEN_LOG=warden::session=debug`,
# `phase NAME: MS ms`), from the start of `session::run` to its return, and what is left
# around them (the process starting, reading the settings, exiting).
# Usage: sudo bench/session_start.sh [ROUNDS=21]
# WARDEN=path/to/warden: that build instead of building this tree. WARDEN_BEFORE=path/to/warden:
# another build as a third side of the same rounds (before and after a change).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
rounds=${1:-21}
warden=${WARDEN:-}
if [ -z "$warden" ]; then
  cargo build --locked --release --bins -q
  warden=${CARGO_TARGET_DIR:-target}/release/warden
fi
before=${WARDEN_BEFORE:-}
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT

. bench/lib.sh
now() { date +%s%N; }
nat() { local t0; t0=$(now); /bin/true; echo $(($(now) - t0)); }
# Each side runs in a subshell (its output is captured): rounds are counted on disk.
sup() {
  local t0 t round
  round=$(($(find "$state" -maxdepth 1 -name 'total.*' | wc -l) + 1))
  t0=$(now)
  WARDEN_LOG=warden::session=debug "$warden" run -q --state-dir "$state" -- /bin/true \
    2>"$state/phases.$round"
  t=$(($(now) - t0))
  echo "$t" >"$state/total.$round"
  echo "$t"
}
old() { local t0; t0=$(now); "$before" run -q --state-dir "$state" -- /bin/true; echo $(($(now) - t0)); }
sides=(nat sup) names=(native warden)
[ -z "$before" ] || { sides+=(old); names+=(before); }
interleave_sides "$rounds" "${sides[@]}"
report_sides "session start and teardown: /bin/true, $rounds interleaved rounds" "${names[@]}"
# shellcheck disable=SC2086,SC2154
{
  n=$(median $side_0)
  awk -v n="$n" -v s="$(median $side_1)" \
    'BEGIN {printf "  a session costs %.1f ms around its command (median warden - median native)\n", (s - n) / 1e6}'
  [ -z "$before" ] || awk -v n="$n" -v s="$(median $side_2)" \
    'BEGIN {printf "  before: %.1f ms\n", (s - n) / 1e6}'
  # A slow round now and then (a teardown waiting for the kernel) hides below a median.
  for i in $(seq 1 $((${#names[@]} - 1))); do
    eval "printf '%s\n' \$side_$i" | tr ' ' '\n' | grep . | awk -v name="${names[i]}" \
      '{s += $1; if ($1 > m) m = $1} END {printf "  %s: mean %.1f ms, slowest %.1f ms\n", name, s / NR / 1e6, m / 1e6}'
  done
}
# The phases, in the order of the first round's log; each its median over the rounds.
phases=$(grep -ho 'phase [a-z_ ]*:' "$state/phases.1" | sed 's/^phase //; s/:$//' || true)
[ -n "$phases" ] || { echo "  (no phase timings: a build without them?)"; exit 0; }
echo "  where the time goes (median ms):"
while read -r phase; do
  ms=$(grep -h "phase $phase: " "$state"/phases.* | sed 's/.*: \([0-9.]*\) ms.*/\1/')
  # shellcheck disable=SC2086
  printf '    %-22s %7.1f\n' "$phase" "$(median $ms)"
done <<<"$phases"
# Outside session::run: the rest of each round's total.
outside=()
for ((r = 1; r <= rounds; r++)); do
  inside=$(grep -h "phase " "$state/phases.$r" | sed 's/.*: \([0-9.]*\) ms.*/\1/' | awk '{s += $1} END {print s}')
  outside+=("$(awk -v t="$(cat "$state/total.$r")" -v i="$inside" 'BEGIN {printf "%.1f", t / 1e6 - i}')")
done
printf '    %-22s %7.1f\n' "outside session::run" "$(median "${outside[@]}")"
