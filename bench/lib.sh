# Shared by the benchmarks (sourced): interleaved rounds and their statistics.
#
# Each round runs the native and the supervised workload back to back, alternating which goes
# first, so that drifts of the machine (a VM's neighbours, frequency changes) hit both alike.
# Two ratios are printed: of the medians, and the median of the per-round ratios (the more
# robust one when rounds differ from each other more than the two sides of one round do).

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# paired_ratio "NATIVE..." "SUPERVISED...": median of supervised[i] / native[i].
paired_ratio() {
  local -a n=($1) s=($2) r=()
  local i
  for ((i = 0; i < ${#n[@]}; i++)); do
    r+=("$(awk -v a="${s[i]}" -v b="${n[i]}" 'BEGIN {printf "%.4f", a / b}')")
  done
  median "${r[@]}"
}

# interleave ROUNDS NATIVE_FN SUPERVISED_FN: fills the arrays `native` and `supervised` with
# what the functions print (a duration in ns), alternating their order round by round.
interleave() {
  local rounds=$1 nat=$2 sup=$3 r
  native=() supervised=()
  for ((r = 0; r < rounds; r++)); do
    if ((r % 2 == 0)); then
      native+=("$($nat)"); supervised+=("$($sup)")
    else
      supervised+=("$($sup)"); native+=("$($nat)")
    fi
  done
}

# report [LABEL [A B]]: the medians of `native` and `supervised` (named A and B, by default
# "native" and "supervised") and both ratios.
report() {
  local label=${1:-} a=${2:-native} b=${3:-supervised}
  local n s
  n=$(median "${native[@]}"); s=$(median "${supervised[@]}")
  awk -v l="$label" -v a="$a" -v b="$b" -v n="$n" -v s="$s" \
    -v p="$(paired_ratio "${native[*]}" "${supervised[*]}")" \
    'BEGIN {printf "  %s%s %.1f ms  %s %.1f ms  ratio of medians %.3fx  median of round ratios %.3fx\n", l, a, n/1e6, b, s/1e6, s/n, p}'
}

# interleave_sides ROUNDS FN...: runs each function once per round, rotating which goes first,
# and keeps what each printed (a duration in ns) in `side_0`, `side_1`, ... (space-separated).
interleave_sides() {
  # Underscored names: the functions it calls see the caller's variables, not these.
  local _rounds=$1 _r _i _k _n
  shift
  _n=$#
  local _fns=("$@")
  for ((_i = 0; _i < _n; _i++)); do eval "side_$_i=''"; done
  for ((_r = 0; _r < _rounds; _r++)); do
    for ((_k = 0; _k < _n; _k++)); do
      _i=$(((_r + _k) % _n))
      eval "side_$_i=\"\$side_$_i $(${_fns[_i]})\""
    done
  done
}

# report_sides LABEL NAME...: the median of each side and its ratios to side 0 (the ratio of
# the medians, and the median of the per-round ratios), one line per side.
report_sides() {
  local label=$1 i n0 s
  shift
  local names=("$@")
  eval "n0=\$side_0"
  echo "$label"
  for ((i = 0; i < ${#names[@]}; i++)); do
    eval "s=\$side_$i"
    # shellcheck disable=SC2086
    awk -v name="${names[i]}" -v m0="$(median $n0)" -v m="$(median $s)" \
      -v p="$(paired_ratio "$n0" "$s")" \
      'BEGIN {printf "  %-12s %10.1f ms  %.3fx  (median of round ratios %.3fx)\n", name, m/1e6, m/m0, p}'
  done
}

# make_build_crate DIR: a small crate using serde (with derive) and serde_json from this
# machine's registry cache, and DIR/build.sh CRATE, which prints the time of
# `cargo clean; cargo build --offline` of it (the clean is not timed).
make_build_crate() {
  local dir=$1
  mkdir -p "$dir/crate/src"
  cat >"$dir/crate/Cargo.toml" <<'TOML'
[package]
name = "bench-build"
version = "0.1.0"
edition = "2021"

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
TOML
  cat >"$dir/crate/src/main.rs" <<'RS'
#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct Point { x: i64, y: i64, label: String }
fn main() {
    let p: Point = serde_json::from_str(r#"{"x":1,"y":2,"label":"a"}"#).unwrap();
    println!("{}", serde_json::to_string(&p).unwrap());
}
RS
  (cd "$dir/crate" && cargo generate-lockfile --offline -q)
  cat >"$dir/build.sh" <<'SH'
#!/bin/sh
set -e
cd "$1"
cargo clean -q
t0=$(date +%s%N)
cargo build --offline -q
echo $(($(date +%s%N) - t0))
SH
  chmod +x "$dir/build.sh"
}
