#!/usr/bin/env bash
# Approval round trip (issue #6): how long an exec is held when the auto-reviewer decides it,
# from the gate taking the notification to its reply (the exec.request records' wait_us),
# beside the same execs decided by the rules alone, in one run. The workload is the exec
# storm (fork+exec of /bin/true); under `--exec-rule prompt=true` every exec is a request
# that the auto-reviewer approves (low risk: a known-safe command).
# Usage: sudo bench/approvals.sh [EXECS=2000]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
execs=${1:-2000}
cargo build --locked --release --bins -q
warden=./target/release/warden
storm=./target/release/exec-storm
state=$(mktemp -d -p /var/lib)
trap 'rm -rf "$state"' EXIT

# p50 and p99 of the wait_us of the exec.request records of /bin/true decided by SOURCE.
percentiles() {
  grep -h '"kind":"exec.request"' "$state"/"$1"/sessions/*/events.jsonl |
    grep '"filename":"/bin/true"' | grep "\"source\":\"$2\"" |
    grep -o '"wait_us":[0-9]*' | cut -d: -f2 | sort -n |
    awk '{a[NR]=$1} END {if (NR == 0) {print "none"; exit}
         printf "p50 %d us  p99 %d us  (%d requests)", a[int(NR*0.5)+1], a[int(NR*0.99)+1], NR}'
}
for round in 1 2 3; do
  "$warden" run -q --state-dir "$state/rules" --unattended -- "$storm" "$execs" >/dev/null
  "$warden" run -q --state-dir "$state/reviewed" --unattended --reviewer auto-review \
    --exec-rule prompt=true -- "$storm" "$execs" >/dev/null
done
echo "exec gate hold time, $execs execs of /bin/true x 3 sessions each"
echo "  decided by the rules        $(percentiles rules policy)"
echo "  approved by the auto-review $(percentiles reviewed auto_review)"
denied=$(grep -h '"kind":"approval"' "$state"/reviewed/sessions/*/events.jsonl | grep -c '"verdict":"deny"' || true)
echo "  auto-review denials: $denied (expected 0)"
