#!/usr/bin/env bash
# Triage corpus (issue #16): benign sessions of real work on this machine (git, cargo, make and
# cc, npm and python from local packages, an editor's tools) and attack sessions that script
# each behaviour triage looks for (bench/corpus/attack-<detection>*.sh; `-hidden` ones inside
# ordinary work), each recorded under `warden run` ROUNDS times and triaged afterwards. Prints,
# per class, the detection rate (attack sessions whose detection fired) and, for the benign
# sessions, how many were flagged and by what; then the time `warden triage` took per 100,000
# records over the whole corpus.
# Then baselines: one workspace's ordinary work (git, make, editing, python in turn), session
# after session, each triaged against the workspace's baseline and learnt; every finding of a
# stable baseline about these benign sessions is a false one.
# Usage: sudo bench/triage_corpus.sh [ROUNDS=3] [BASELINE_SESSIONS=30]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
rounds=${1:-3}
baseline_sessions=${2:-30}
cargo build --locked --release --bins -q
warden=$PWD/target/release/warden
work=$(mktemp -d -p /var/lib warden-corpus.XXXXXX)
listener=
other="$HOME/.warden-corpus-other-project"
trap 'kill $listener 2> /dev/null || true; rm -rf "$work" "$other"' EXIT
# Another project of the user's, for the attack that reads across the home directory.
mkdir -p "$other" && for i in $(seq 40); do echo "secret plans $i" > "$other/notes$i.txt"; done

# The reverse shell's other end, on loopback: it sends each shell one command.
python3 - > "$work/port" <<'PY' &
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1]); sys.stdout.flush()
while True:
    c, _ = s.accept(); c.settimeout(5)
    try:
        c.sendall(b"echo reached; exit\n"); c.recv(4096)
    except OSError:
        pass
    c.close()
PY
listener=$!
while [ ! -s "$work/port" ]; do sleep 0.1; done
export LISTENER_PORT=$(cat "$work/port")

# run SCRIPT N: records one session of the script in a fresh workspace; prints its log.
run() {
  local script=$1 n=$2 name ws
  name=$(basename "$script" .sh)
  ws="$work/ws/$name-$n" && mkdir -p "$ws"
  (cd "$ws" && "$warden" run -q --state-dir "$work/state" --workspace "$ws" \
     --allow-cidr 127.0.0.1/32 --dns-upstream 127.0.0.1:9 --unattended -- sh "$script" \
     > /dev/null 2>&1 || true)
  # (sed reads all of ls: head would end the pipeline early, SIGPIPE under pipefail)
  ls -t "$work"/state/sessions/*/events.jsonl | sed -n 1p
}

# findings LOG: the detections `warden triage` reports, one per line.
findings() {
  { "$warden" triage "$1" --json --no-baseline 2> /dev/null || true; } \
    | python3 -c 'import json, sys; [print(f["detection"]) for f in json.load(sys.stdin)["findings"]]'
}

declare -A hit total
benign_total=0 benign_flagged=0 records=0
flagged_by=""
for ((r = 0; r < rounds; r++)); do
  for script in bench/corpus/*.sh; do
    log=$(run "$PWD/$script" "$r")
    records=$((records + $(wc -l < "$log")))
    found=$(findings "$log")
    name=$(basename "$script" .sh)
    case $name in
      benign-*)
        benign_total=$((benign_total + 1))
        if [ -n "$found" ]; then
          benign_flagged=$((benign_flagged + 1))
          flagged_by="$flagged_by $name:$(echo $found | tr ' ' ',')"
        fi ;;
      attack-*)
        class=${name#attack-}; class=${class%-hidden}
        total[$class]=$((${total[$class]:-0} + 1))
        if grep -qx "$class" <<< "$found"; then hit[$class]=$((${hit[$class]:-0} + 1)); fi ;;
    esac
  done
done

echo "== triage corpus: $rounds rounds, $(ls bench/corpus | wc -l) scripts, $records records"
echo "  detection rate per class (attack sessions whose detection fired):"
for class in $(printf '%s\n' "${!total[@]}" | sort); do
  printf '    %-32s %d/%d\n' "$class" "${hit[$class]:-0}" "${total[$class]}"
done
echo "  benign sessions flagged: $benign_flagged/$benign_total${flagged_by:+ (}${flagged_by# }${flagged_by:+)}"
t0=$(date +%s%N)
for log in "$work"/state/sessions/*/events.jsonl; do "$warden" triage "$log" --no-baseline > /dev/null || true; done
t1=$(date +%s%N)
awk -v t=$((t1 - t0)) -v n="$records" -v s="$(ls "$work"/state/sessions | wc -l)" 'BEGIN {
  printf "  warden triage over the corpus: %.2f s for %d sessions, %d records (%.3f s per 100,000 records, process start included)\n", t/1e9, s, n, t/1e9*100000/n }'

# Baselines, on real sessions of one workspace.
bws="$work/ws/baseline" bstate="$work/baseline-state"
kinds=(git make editing python)
judged=0 false_findings=0 stable_at=
for ((i = 0; i < baseline_sessions; i++)); do
  rm -rf "$bws" && mkdir -p "$bws"
  script="$PWD/bench/corpus/benign-${kinds[i % ${#kinds[@]}]}.sh"
  (cd "$bws" && "$warden" run -q --state-dir "$bstate" --workspace "$bws" --dns-upstream 127.0.0.1:9 \
     --unattended -- sh "$script" > /dev/null 2>&1 || true)
  log=$(ls -t "$bstate"/sessions/*/events.jsonl | sed -n 1p)
  # stderr names the baseline as it was before this session: "...: stable, 12 sessions learnt".
  report=$("$warden" triage "$log" --json --state-dir "$bstate" 2> "$work/baseline.err" || true)
  if grep -q ": stable, " "$work/baseline.err"; then
    stable_at=${stable_at:-$i}
    judged=$((judged + 1))
    n=$(python3 -c 'import json, sys; print(sum(f["source"] == "baseline" for f in json.load(sys.stdin)["findings"]))' <<< "$report")
    false_findings=$((false_findings + n))
  fi
done
echo "  baselines: one workspace, $baseline_sessions benign sessions; stable from session ${stable_at:-never}; $false_findings false findings over the $judged sessions judged by a stable baseline (target: at most 1 per 20)"
# The same workspace then looks up a domain it never did: a stable baseline must say so.
rm -rf "$bws" && mkdir -p "$bws"
(cd "$bws" && "$warden" run -q --state-dir "$bstate" --workspace "$bws" --dns-upstream 127.0.0.1:9 \
   --unattended -- sh -c 'git init -q . && getent hosts updates.example.test' > /dev/null 2>&1 || true)
log=$(ls -t "$bstate"/sessions/*/events.jsonl | sed -n 1p)
new=$("$warden" triage "$log" --json --state-dir "$bstate" 2> /dev/null || true)
seen=$(python3 -c 'import json, sys; print(",".join(f["detection"] for f in json.load(sys.stdin)["findings"] if f["source"] == "baseline"))' <<< "$new")
echo "  then a session that looks up a new domain: baseline findings: ${seen:-none}"
