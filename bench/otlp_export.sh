#!/usr/bin/env bash
# Telemetry benchmarks (issue #7), against a real collector (rotel, blackhole exporter) on
# loopback:
#  1. Export throughput: a recorded exec-storm session (every exec, fork, exit, decision and
#     file record) sent again with `warden replay --otlp`, over gRPC and over HTTP: records/s.
#  2. The overhead of export on the exec storm: N fork+exec of /bin/true under `warden run`
#     without telemetry and with live OTLP export (gRPC), interleaved round by round (see
#     bench/lib.sh); ratios of the workload's own timing. Every exported session must end with its
#     cursor at session.end (all acknowledged), or the run is void.
# Usage: sudo bench/otlp_export.sh [EXECS=2000] [ROUNDS=9]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
execs=${1:-2000}
rounds=${2:-9}
cargo build --locked --release --bins -q
warden=./target/release/warden
storm=./target/release/exec-storm
rotel=${ROTEL_AGENT:-$(python3 -c 'import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')}
work=$(mktemp -d -p /var/lib)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
grpc=127.0.7.9:4790
http=127.0.7.9:4791
"$rotel" start --otlp-grpc-endpoint "$grpc" --otlp-http-endpoint "$http" --exporter blackhole \
  >"$work/rotel.log" 2>&1 & pids+=($!)
sleep 0.5

. bench/lib.sh
now() { date +%s%N; }

# 1. Throughput of sending a recorded log.
"$warden" run -q --state-dir "$work/recorded" --dns-upstream 127.0.0.1:9 -- "$storm" 5000 >/dev/null
log=$(ls "$work"/recorded/sessions/*/events.jsonl)
records=$(wc -l <"$log")
for proto in grpc http; do
  url=http://$grpc; [ "$proto" = http ] && url=http://$http
  times=()
  for _ in 1 2 3; do
    t0=$(now); "$warden" replay "$log" --otlp "$url" --protocol "$proto" >/dev/null
    times+=($(($(now) - t0)))
  done
  t=$(median "${times[@]}")
  awk -v n="$records" -v ns="$t" -v p="$proto" \
    'BEGIN {printf "export throughput (%s): %d records in %.0f ms = %.0f records/s\n", p, n, ns / 1e6, n / (ns / 1e9)}'
done

# 2. Exec storm with and without live export.
nat() { "$warden" run -q --state-dir "$work/plain" --dns-upstream 127.0.0.1:9 -- "$storm" "$execs"; }
sup() {
  "$warden" run -q --state-dir "$work/exported" --dns-upstream 127.0.0.1:9 \
    --otlp-endpoint "http://$grpc" --otlp-protocol grpc -- "$storm" "$execs"
}
interleave "$rounds" nat sup
done_count=$(grep -l '"done":true' "$work"/exported/sessions/*/export.cursor | wc -l)
echo "exec storm under warden run: $execs fork+exec of /bin/true, $rounds interleaved rounds"
report "" "without export" "with live gRPC export"
echo "  exported sessions fully acknowledged: $done_count of $rounds"
