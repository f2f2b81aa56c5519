#!/bin/sh
# Inside the systemd-booted Debian 12 of systemd.sh: apt install the package, then check what
# systemd does with it. Each check prints a WARDEN-PKG line; the last is OK or FAILED.
deb=/host$(sed -n 's/.*warden.deb=\([^ ]*\).*/\1/p' /proc/cmdline)
say() { echo "WARDEN-PKG $*"; }
fail() { echo "WARDEN-PKG-FAILED $*"; systemctl poweroff --no-block; exit 1; }
as_alice() { runuser -u alice -- "$@"; }
say "booted: $(uname -r), systemd $(systemctl --version | head -1 | cut -d' ' -f2)"

cp "$deb" /tmp/ || fail "no package at $deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/$(basename "$deb")" >/tmp/apt.log 2>&1 \
  || { tail -5 /tmp/apt.log; fail "apt install"; }
systemctl is-enabled wardend.socket >/dev/null || fail "wardend.socket is not enabled"
systemctl is-active wardend.socket >/dev/null || fail "wardend.socket is not listening"
[ -S /run/warden/wardend.sock ] || fail "no /run/warden/wardend.sock"
say "installed: wardend.socket enabled and listening, wardend.service $(systemctl is-active wardend.service)"

useradd -m -G warden alice
useradd -m mallory
mkdir -p /srv/outside && chown alice /srv/outside
out=$(cd /home/alice && as_alice warden run --unattended -- sh -c 'id -un; echo x > /srv/outside/planted; echo OUT=$?; exit 3' 2>/tmp/alice.err)
st=$?
[ "$st" = 3 ] || { cat /tmp/alice.err; journalctl -u wardend --no-pager | tail -20; fail "alice's session exited $st"; }
echo "$out" | grep -qx alice || fail "not run as alice: $out"
echo "$out" | grep -qx 'OUT=[12]' || fail "wrote outside its write roots: $out"
systemctl is-active wardend.service >/dev/null || fail "the first connection did not start wardend.service"
say "socket activation: wardend.service started by alice's session, which ran confined (exit 3)"

if as_alice true; then :; fi
cd /home/mallory && runuser -u mallory -- warden run -- true 2>/tmp/mallory.err && fail "mallory was not refused"
grep -q 'may not start Warden sessions' /tmp/mallory.err || fail "mallory's refusal: $(cat /tmp/mallory.err)"
say "mallory (not in warden) refused"

mkfifo /tmp/go && chmod 666 /tmp/go
(cd /home/alice && as_alice warden run --unattended -- sh -c 'read go < /tmp/go; echo x > /srv/outside/planted2; echo OUT=$?; exit 4' >/tmp/live.out 2>/tmp/live.err; echo "$?" >/tmp/live.status) &
i=0
until warden status | grep -q alice; do i=$((i + 1)); [ $i -gt 100 ] && fail "the live session is not listed"; sleep 0.2; done
old=$(systemctl show -p MainPID --value wardend.service)
systemctl restart wardend.service || fail "systemctl restart wardend"
new=$(systemctl show -p MainPID --value wardend.service)
[ "$old" != "$new" ] || fail "the daemon was not restarted ($old)"
as_alice warden status | grep -q alice || fail "the restarted daemon does not list alice's live session"
echo go > /tmp/go
i=0
until [ -s /tmp/live.status ]; do i=$((i + 1)); [ $i -gt 150 ] && fail "the session did not end"; sleep 0.2; done
[ "$(cat /tmp/live.status)" = 4 ] || { cat /tmp/live.err; fail "the session across the restart exited $(cat /tmp/live.status)"; }
grep -qx 'OUT=[12]' /tmp/live.out || fail "after the restart the session wrote outside: $(cat /tmp/live.out)"
say "systemctl restart wardend (pid $old -> $new) mid-session: the session went on confined and was listed by the new daemon"

DEBIAN_FRONTEND=noninteractive apt-get purge -y -q warden >>/tmp/apt.log 2>&1 || fail "apt purge"
systemctl is-active wardend.socket >/dev/null 2>&1 && fail "wardend.socket still active after purge"
[ -e /run/warden/wardend.sock ] && fail "the socket is left after purge"
say "purged: the socket and the service are gone"
echo "WARDEN-PKG-OK"
systemctl poweroff --no-block
