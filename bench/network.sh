#!/usr/bin/env bash
# Network benchmarks (issue #3), each measured natively and under `warden run` side by side:
#  1. 10,000 TCP connects to an allowed loopback listener, interleaved rounds: ratio of the
#     medians (the workload times itself, so session start-up is not counted).
#  2. DNS lookup latency straight to dnsmasq vs through Warden's proxy (the query goes to a
#     resolver address and the kernel redirects it): p50 and p99.
# Everything is on loopback. Usage: sudo bench/network.sh [CONNECTS=10000] [ROUNDS=15]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
connects=${1:-10000}
rounds=${2:-15}
cargo build --locked --release --bins -q
warden=./target/release/warden
nb=./target/release/net-bench
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$nb" serve 127.0.9.10:7001 & pids+=($!)
dnsmasq --conf-file=/dev/null --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
  --user=root --listen-address=127.0.9.2 --port=5399 --local-ttl=300 \
  --pid-file="$work/dnsmasq.pid" --address=/bench.test/127.0.9.10 & pids+=($!)
sleep 0.5
run() { "$warden" run -q --state-dir "$work/state" --dns-upstream 127.0.9.2:5399 \
  --no-default-domains --allow-cidr 127.0.9.10 --allow-domain bench.test -- "$@"; }

. bench/lib.sh
nat() { "$nb" connect 127.0.9.10:7001 "$connects"; }
sup() { run "$nb" connect 127.0.9.10:7001 "$connects"; }
interleave "$rounds" nat sup
echo "tcp connects: $connects to an allowed loopback listener, $rounds interleaved rounds"
report
# Allowed connects are folded per second: sum the counts (a record without one counts 1).
recorded=$(cat "$work"/state/sessions/*/events.jsonl | grep '"kind":"network.connect"' |
  awk '{n = 1; if (match($0, /"count":[0-9]+/)) n = substr($0, RSTART + 8, RLENGTH - 8); s += n} END {print s + 0}')
echo "  supervised connects recorded: $recorded of $((connects * rounds))"

direct=$("$nb" dns 127.0.9.2:5399 bench.test 2000)
proxied=$(run "$nb" dns 127.0.9.77:53 bench.test 2000)
echo "dns lookup latency, 2000 sequential queries (microseconds)"
echo "  direct to dnsmasq  p50 ${direct% *}  p99 ${direct#* }"
echo "  through the proxy  p50 ${proxied% *}  p99 ${proxied#* }"
echo "  added at p50: $(( ${proxied% *} - ${direct% *} )) us"
