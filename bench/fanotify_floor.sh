#!/usr/bin/env bash
# An alternative to the syscall-tracepoint floor, measured (issue #13): fanotify marks on the
# mount of a private mount namespace (what a session's own mounts would be), reporting every
# open and close there, against the tracepoint tier, side by side with native runs of N
# open+close of a tmpfs file. Also counts what each reports (fanotify merges identical
# events and reports neither failed opens nor open flags).
# Usage: sudo bench/fanotify_floor.sh [N=100000] [ROUNDS=7]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
n=${1:-100000}
rounds=${2:-7}
[ -x ./target/release/warden ] || cargo build --locked --release --bins -q
warden=$(realpath ./target/release/warden)
work=$(mktemp -d -p /var/lib warden-bench-fan.XXXXXX)
trap 'rm -rf "$work"' EXIT
cat >"$work/fan.c" <<'C'
// fanotify as a file-observation floor: mark the mount of a private mount namespace and
// count what it reports while N open+close of one file run there.
#define _GNU_SOURCE
#include <sys/fanotify.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>

static long long now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }

int main(int argc, char **argv) {
    int n = atoi(argv[1]); const char *path = argv[2]; int watch = atoi(argv[3]);
    int p[2]; pipe(p);
    int fan = -1;
    if (watch) {
        if (unshare(CLONE_NEWNS)) { perror("unshare"); return 1; }
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
        fan = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK | FAN_CLOEXEC, O_RDONLY);
        if (fan < 0) { perror("fanotify_init"); return 1; }
        // The mount that holds the file, in this namespace only.
        if (fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN | FAN_CLOSE, AT_FDCWD, path)) { perror("mark"); return 1; }
    }
    pid_t c = fork();
    if (c == 0) {
        long long t0 = now();
        for (int i = 0; i < n; i++) { int fd = open(path, O_RDONLY); close(fd); }
        long long t = now() - t0;
        write(p[1], &t, sizeof t);
        _exit(0);
    }
    long events = 0; char buf[65536];
    if (watch) {
        int st; 
        for (;;) {
            struct pollfd pf = { fan, POLLIN, 0 };
            poll(&pf, 1, 20);
            ssize_t r;
            while ((r = read(fan, buf, sizeof buf)) > 0) {
                for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, r); m = FAN_EVENT_NEXT(m, r)) { events++; if (m->fd >= 0) close(m->fd); }
            }
            if (waitpid(c, &st, WNOHANG) == c) break;
        }
        ssize_t r;
        while ((r = read(fan, buf, sizeof buf)) > 0)
            for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, r); m = FAN_EVENT_NEXT(m, r)) { events++; if (m->fd >= 0) close(m->fd); }
    } else waitpid(c, NULL, 0);
    long long t; read(p[0], &t, sizeof t);
    printf("%lld\n", t);
    fprintf(stderr, "events %ld\n", events);
    return 0;
}
C
gcc -O2 -o "$work/fan" "$work/fan.c"
file=/dev/shm/warden-bench-fan
: >"$file"
. bench/lib.sh
side_native() { "$work/fan" "$n" "$file" 0 2>/dev/null; }
side_fanotify() { "$work/fan" "$n" "$file" 1 2>>"$work/fan.events"; }
side_tracepoint() {
  "$warden" run -q --hook-tier tracepoint --sandbox-mode danger-full-access \
    --state-dir "$work/state" --dns-upstream 127.0.0.1:9 -- "$work/fan" "$n" "$file" 0 2>/dev/null
}
interleave_sides "$rounds" side_native side_fanotify side_tracepoint
report_sides "$n open+close of a tmpfs file, $rounds rounds, $(uname -r)" native fanotify tracepoint
echo "  fanotify events read per run: $(sort -u "$work/fan.events" | tr '\n' ' ')(of $((2 * n)) opens and closes)"
