#!/usr/bin/env bash
# Sets up the machine, builds Warden, and runs a supervised demo session with the built-in
# defaults, showing what it does as it happens (`--events`: execs, decisions, denials, network,
# one line of file activity per process) and then the recorded process tree.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "scripts/demo.sh: run as root" >&2; exit 1; }
  exec sudo bash "$0" "$@"
fi
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --locked --release --bins
warden=./target/release/warden
"$warden" doctor || true
echo
echo "== A supervised session with the built-in defaults: a small build-like workload, a"
echo "   daemon left behind, and network attempts outside the allowlist (all on this machine:"
echo "   refused names never leave it, refused connects fail in the kernel before any packet)."
echo "   The auto-reviewer decides what needs approval; nobody is asked (--unattended)."
"$warden" run --events --reviewer auto-review --unattended -- sh -c '
  echo "hello from $(id -un) in session cgroup $(cut -d: -f3 /proc/self/cgroup)"
  ls / > /dev/null
  (setsid sleep 60 &)     # a daemon that outlives the command: killed when the session ends
  printf "%s\n" one two three | sort -r | head -n 1
  getent hosts example.com || echo "example.com: not resolvable (not on the allowlist)"
  curl -sS --max-time 2 http://127.0.0.1:8080/ || echo "loopback port 8080: refused by the kernel"
  exit 3' || echo "(the command exited with status $?)"
echo
echo "== The recorded session, as a process tree"
"$warden" events last --view tree
