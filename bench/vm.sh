#!/usr/bin/env bash
# Runs bench/hook_tiers.sh inside a VM booted with a stock kernel (integration-tests/vm/), so
# that the tiers this machine's kernel refuses (bpf_lsm, fentry) are measured against each
# other and against native, side by side in one run. Software emulation (TCG, one host thread
# per guest CPU) inflates absolute times; the ratios of one run are what count. Nothing else
# should run on the machine meanwhile.
#
#   sudo bench/vm.sh                       # every workload, with small counts (about an hour)
#   sudo bench/vm.sh "opens 20000 5"       # one: hook_tiers.sh's arguments
#
# WARDEN_BENCH_KERNEL picks the VM target (default: Debian 12's 6.12 with bpf in its LSM list).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
kernel=${WARDEN_BENCH_KERNEL:-linux-image-6.12.117+deb12-amd64}
if [ $# -eq 0 ]; then
  set -- "opens 20000 7" "execs 300 7" "connects 2000 7" "build - 3"
fi
cargo build --locked --release --bins -q
cargo build --locked --bins -q
script=
for w in "$@"; do
  script+="WARDEN_BENCH_ARGS='${WARDEN_BENCH_ARGS:-}' bash bench/hook_tiers.sh $w; "
done
# Two host threads for the guest's two CPUs: the supervisor's own work runs beside the
# workload, as on a 2-core machine, rather than taking turns with it on one emulated thread.
bash integration-tests/vm/run.sh --kernel "$kernel" --tcg-multi --timeout 7200 --shell-command "$script" \
  | sed -n '/^WARDEN-VM-TEST-START/,/^WARDEN-VM-TEST-END/p' | grep -v '^WARDEN-VM-TEST'
