#!/usr/bin/env bash
# Where a supervised build's extra time goes (issue #13): a system-wide CPU profile (perf,
# cpu-clock) of the cargo build of bench/cargo_build.sh, native and under `warden run`,
# ROUNDS builds each, then the symbols whose samples grew the most, and Warden's own
# processes. Needs `perf` (Debian's linux-perf).
# Usage: sudo bench/profile_build.sh [ROUNDS=3] [-- WARDEN RUN OPTIONS...]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
rounds=${1:-3}
shift || true
[ "${1:-}" != "--" ] || shift
extra=("$@")
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
[ -x ./target/release/warden ] || cargo build --locked --release --bins -q
warden=$(realpath ./target/release/warden)
work=$(mktemp -d -p /var/lib warden-bench-profile.XXXXXX)
trap 'rm -rf "$work"' EXIT
. bench/lib.sh
make_build_crate "$work"
"$work/build.sh" "$work/crate" >/dev/null # warm the page cache
builds() {
  local i
  for ((i = 0; i < rounds; i++)); do "$@" >/dev/null; done
}
native() { "$work/build.sh" "$work/crate"; }
supervised() {
  (cd "$work/crate" && "$warden" run -q --state-dir "$work/state" --dns-upstream 127.0.0.1:9 \
    "${extra[@]}" -- "$work/build.sh" "$work/crate")
}
for side in native supervised; do
  perf record -q -a -e cpu-clock -o "$work/$side.data" -- bash -c "$(declare -f builds native supervised); $(declare -p work warden extra rounds); builds $side" 2>/dev/null
  # CPU time by process and symbol, idle left out: "percent<TAB>comm<TAB>symbol".
  perf report -q -i "$work/$side.data" --stdio --sort comm,sym --field-separator=$'\t' 2>/dev/null \
    | awk -F'\t' '{gsub(/[% ]/, "", $1); gsub(/ +$/, "", $2)} $2 != "swapper" {print $1 "\t" $2 "\t" $3}' >"$work/$side.tsv"
  perf report -i "$work/$side.data" --stdio 2>/dev/null | awk '/^# Event count/ {print $NF}' >"$work/$side.total"
done
python3 - "$work" "$rounds" <<'PY'
import sys
work, rounds = sys.argv[1], sys.argv[2]
def load(side):
    total = float(open(f"{work}/{side}.total").read()) / 1e6  # ms of CPU, idle included
    by_sym, by_comm = {}, {}
    for line in open(f"{work}/{side}.tsv"):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 3 or not parts[0]:
            continue
        ms = float(parts[0]) / 100 * total
        sym = parts[2].replace("[k] ", "").replace("[.] ", "").strip()
        by_sym[sym] = by_sym.get(sym, 0) + ms
        by_comm[parts[1]] = by_comm.get(parts[1], 0) + ms
    return by_sym, by_comm
(na, nc), (sa, sc) = load("native"), load("supervised")
busy_n, busy_s = sum(nc.values()), sum(sc.values())
print(f"busy CPU over {rounds} builds: native {busy_n:.0f} ms, supervised {busy_s:.0f} ms ({busy_s / busy_n:.3f}x)")
print("symbols whose CPU time grew most (ms):")
for d, k in sorted(((sa.get(k, 0) - na.get(k, 0), k) for k in set(na) | set(sa)), reverse=True)[:15]:
    print(f"  {d:+8.1f}  {k}")
print("Warden's own processes and threads (ms):")
for comm, ms in sorted(sc.items(), key=lambda x: -x[1]):
    if comm.startswith(("warden", "tokio")):
        print(f"  {ms:8.1f}  {comm}")
PY
