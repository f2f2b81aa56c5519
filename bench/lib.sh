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
