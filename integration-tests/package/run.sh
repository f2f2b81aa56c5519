#!/usr/bin/env bash
# The Debian package on a throw-away Debian 12 (an overlay on a debootstrapped root, chrooted,
# with the host's kernel interfaces bound in): `apt install ./warden_*.deb` brings in its
# dependencies, the group, the units, the default requirements, man pages and completions;
# wardend (started by hand: no systemd in a chroot) gives a member of `warden` a confined,
# recorded session and refuses another user; reinstalling the package (an upgrade) under a
# live session leaves that session confined, and a new wardend takes it back; remove and purge
# leave nothing behind. Prints `package: ok` at the end; any failed check exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=${1:?usage: run.sh PACKAGE.deb}
LOWER=/var/cache/warden-package/bookworm
bash integration-tests/package/prepare.sh

work=$(mktemp -d /var/tmp/warden-package.XXXXXX)
root=$work/root
mounts=()
cleanup() {
  set +e
  [ -n "${daemon_pid:-}" ] && kill "$daemon_pid" 2>/dev/null
  # Every process left in the chroot (a session that outlived its test) is killed first.
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null
  done
  sleep 0.5
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}"; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "package: FAILED: $*" >&2; exit 1; }
mnt() { mount "$@"; mounts+=("${@: -1}"); }

mkdir -p "$work/upper" "$work/work" "$root"
mnt -t overlay overlay -o "lowerdir=$LOWER,upperdir=$work/upper,workdir=$work/work" "$root"
mnt -t proc proc "$root/proc"
mnt --rbind /sys "$root/sys"
mnt --rbind /dev "$root/dev"
mnt -t tmpfs tmpfs "$root/run"
mnt -t tmpfs tmpfs "$root/tmp"
cp /etc/resolv.conf "$root/etc/resolv.conf"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
# By number: the names are the chroot's, not the host's.
as_user() {
  local u=$1; shift
  chroot --userspec="$(in_root id -u "$u"):$(in_root id -g "$u")" --groups="$(in_root id -G "$u" | tr ' ' ',')" \
    "$root" env -i PATH=/usr/bin:/bin HOME="/home/$u" LANG=C.UTF-8 "$@"
}

echo "package: apt install ./$(basename "$deb")"
cp "$deb" "$root/tmp/"
in_root apt-get update -q >/dev/null
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/$(basename "$deb")" >"$work/install.log" 2>&1 \
  || { tail -30 "$work/install.log"; fail "apt install"; }

for f in /usr/bin/warden /usr/bin/warden-launcher /usr/sbin/wardend /lib/systemd/system/wardend.socket \
  /lib/systemd/system/wardend.service /etc/warden/requirements.toml /usr/share/man/man1/warden-run.1.gz \
  /usr/share/man/man1/warden-daemon.1.gz /usr/share/bash-completion/completions/warden \
  /usr/share/zsh/vendor-completions/_warden /usr/share/doc/warden/service.md; do
  [ -e "$root$f" ] || fail "$f is not installed"
done
in_root getent group warden >/dev/null || fail "the group warden was not created"
grep -q '^warden ' <<<"$(in_root warden --version)" || fail "warden --version"
# Read whole before grep -q quits (with pipefail a report cut short by SIGPIPE would fail).
grep -q 'service.allowed_groups' <<<"$(in_root warden requirements show)" || fail "the default requirements are not read"
echo "package: installed (binaries, units, requirements, man pages, completions, group)"

in_root useradd -m -G warden alice
in_root useradd -m mallory
start_wardend() {
  # chroot itself in the background (not a function's subshell): $! is the daemon.
  chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 /usr/sbin/wardend >>"$work/wardend.log" 2>&1 &
  daemon_pid=$!
}
start_wardend
for _ in $(seq 50); do [ -S "$root/run/warden/wardend.sock" ] && break; sleep 0.1; done
[ -S "$root/run/warden/wardend.sock" ] || { cat "$work/wardend.log"; fail "wardend did not listen"; }

out=$(cd "$root/home/alice" && as_user alice sh -c 'cd ~ && warden run --unattended -- sh -c "id -un; echo x > /etc/planted; echo ETC=\$?; exit 3"' 2>"$work/alice.err") && st=0 || st=$?
[ "$st" = 3 ] || { cat "$work/alice.err" "$work/wardend.log"; fail "alice's session exited $st, not 3"; }
grep -qx alice <<<"$out" || fail "the command did not run as alice: $out"
grep -qx 'ETC=[12]' <<<"$out" || fail "alice's session wrote to /etc: $out"
[ -e "$root/etc/planted" ] && fail "/etc/planted exists"
ls "$root"/var/lib/warden/sessions/*/events.jsonl >/dev/null 2>&1 || fail "no session log in /var/lib/warden"
in_root warden replay last --verify >/dev/null || fail "the session's log does not verify"
echo "package: alice (group warden) ran a confined, recorded session without root"

if as_user mallory sh -c 'cd ~ && warden run -- true' 2>"$work/mallory.err"; then fail "mallory was not refused"; fi
grep -q 'may not start Warden sessions' "$work/mallory.err" || { cat "$work/mallory.err"; fail "mallory's refusal"; }
echo "package: mallory (not in warden) refused: $(head -c 120 "$work/mallory.err")..."

# An upgrade (the same package again) under a live session: the session's programs stay,
# it stays confined, and the restarted daemon lists it.
fifo=$root/tmp/go
mkfifo "$fifo"
chmod 666 "$fifo"
(cd "$root/home/alice" && as_user alice sh -c 'cd ~ && warden run --unattended -- sh -c "read go < /tmp/go; echo x > /etc/planted2; echo ETC=\$?"' >"$work/live.out" 2>"$work/live.err") &
client=$!
for _ in $(seq 100); do grep -q alice <<<"$(in_root warden status)" && break; sleep 0.1; done
grep -q alice <<<"$(in_root warden status)" || { cat "$work/live.err"; fail "the live session is not listed"; }
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall "/tmp/$(basename "$deb")" >>"$work/install.log" 2>&1 || fail "reinstall"
kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
start_wardend
for _ in $(seq 50); do grep -q alice <<<"$(as_user alice warden status 2>/dev/null)" && break; sleep 0.1; done
grep -q alice <<<"$(as_user alice warden status)" || fail "the new daemon does not list the live session"
echo go > "$fifo"
wait "$client" || true
grep -qx 'ETC=[12]' "$work/live.out" || { cat "$work/live.out" "$work/live.err"; fail "the session after the upgrade"; }
[ -e "$root/etc/planted2" ] && fail "/etc/planted2 exists"
echo "package: a session live across the upgrade stayed confined and was taken back"

kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/wardend.log"; fail "wardend died"; }
kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
daemon_pid=
sessions=$(ls "$root/var/lib/warden/sessions")
in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q warden >>"$work/install.log" 2>&1 || fail "apt remove"
for f in /usr/bin/warden /usr/sbin/wardend /lib/systemd/system/wardend.service; do
  [ -e "$root$f" ] && fail "$f is left after remove"
done
[ -e "$root/etc/warden/requirements.toml" ] || fail "remove took the conffile (only purge may)"
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q warden >>"$work/install.log" 2>&1 || fail "apt purge"
for f in /etc/warden /var/lib/warden; do
  [ -e "$root$f" ] && fail "$f is left after purge"
done
in_root getent group warden >/dev/null && fail "the group warden is left after purge"
for id in $sessions; do
  [ -e "/sys/fs/cgroup/warden/$id" ] && fail "session $id left its cgroup"
  [ -e "/sys/fs/bpf/warden/$id" ] && fail "session $id left its pinned programs"
done
echo "package: removed and purged; the $(wc -w <<<"$sessions") sessions left no cgroup and no pins"
echo "package: ok"
