#!/usr/bin/env bash
# The stock-kernel VM matrix: boots each kernel of integration-tests/vm/kernels under QEMU's
# software emulation with this machine's root file system shared in read-only (9p, under a
# tmpfs overlay), runs the kernel-dependent integration tests (integration-tests/vm/suite) as
# root inside, and turns the guest's markers into the result. Run as root, after
# `cargo build --bins` (scripts/test.sh does both).
#
#   bash integration-tests/vm/run.sh                      # every kernel, the whole suite
#   bash integration-tests/vm/run.sh --kernel linux-image-6.1.0-57-amd64 --test doctor
#   bash integration-tests/vm/run.sh --shell-command 'warden doctor'    # any command inside
#
# Kernels and initramfs images are cached in $WARDEN_VM_CACHE (default /var/cache/warden-vm);
# each guest's console is kept in target/vm/<kernel>/console.log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${WARDEN_VM_CACHE:-/var/cache/warden-vm}
out_root="$repo/target/vm"
export PATH="$HOME/.cargo/bin:$PATH"

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    cat <<EOF

Options:
  --kernel TARGET       only this target: a kernel package, or a line of
                        integration-tests/vm/kernels such as 'PKG lsm=LIST' (repeatable;
                        default: every line of that file)
  --test NAME[:FILTER]  only this integration-test target, optionally only tests whose name
                        contains FILTER (repeatable; default: integration-tests/vm/suite)
  --shell-command CMD   run CMD (sh -c, in the repo, target/debug on PATH) instead of tests
  --timeout SECS        per kernel, boot to power-off (default 2400)
  --jobs N              kernels booted at once (default 2: one emulated CPU thread each)
  --tcg-multi           emulate the guest's two CPUs on two host threads (as a 2-core
                        machine runs; for benchmarks: code patching while programs attach
                        can oops the guest, see below)
  --fetch-only          download and unpack the kernels, build their initramfs, and stop
EOF
}

log() { printf '\033[1mvm:\033[0m %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 2
}

kernels=()
tests=()
shell_command=
timeout_secs=2400
jobs=2
tcg_thread=single
fetch_only=
while [ $# -gt 0 ]; do
    case "$1" in
    --kernel) kernels+=("$2"); shift 2 ;;
    --test) tests+=("$2"); shift 2 ;;
    --shell-command) shell_command=$2; shift 2 ;;
    --timeout) timeout_secs=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --fetch-only) fetch_only=1; shift ;;
    --tcg-multi) tcg_thread=multi; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "run as root: the guest mounts this machine's root file system as root"
list() { grep -v '^\s*\(#\|$\)' "$1"; }
[ ${#kernels[@]} -gt 0 ] || mapfile -t kernels < <(list "$here/kernels")
[ ${#tests[@]} -gt 0 ] || mapfile -t tests < <(list "$here/suite")
for tool in qemu-system-x86_64 cpio busybox; do
    command -v "$tool" >/dev/null \
        || die "$tool is missing: scripts/setup.sh installs it (qemu-system-x86, cpio, busybox-static)"
done

# A target is a line of integration-tests/vm/kernels: a kernel package, optionally with the
# LSM list to boot it with (default: Debian's, which has bpf). Its label names its output.
DEFAULT_LSM=lockdown,capability,landlock,yama,bpf
pkg_of() { echo "${1%% *}"; }
lsm_of() {
    case "$1" in *" lsm="*) echo "${1##* lsm=}" ;; *) echo "$DEFAULT_LSM" ;; esac
}
label_of() {
    case "$1" in *" lsm="*) echo "$(pkg_of "$1")+lsm=$(lsm_of "$1")" ;; *) echo "$1" ;; esac
}

# The kernel package, unpacked: boot/vmlinuz-* and lib/modules/<release>/.
fetch_kernel() {
    local pkg=$1 dir="$cache/$1"
    if [ ! -f "$dir/.unpacked" ]; then
        mkdir -p "$cache/debs"
        if ! ls "$cache/debs/${pkg}_"*.deb >/dev/null 2>&1; then
            log "$pkg: apt-get download"
            (cd "$cache/debs" && apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) \
                || die "$pkg: apt-get download failed (is the package name exact? apt-cache policy $pkg)"
        fi
        rm -rf "$dir"
        mkdir -p "$dir"
        dpkg -x "$cache/debs/${pkg}_"*.deb "$dir"
        touch "$dir/.unpacked"
    fi
}

# Modules the guest needs before it can mount the host (9p over virtio-pci, overlayfs), with
# their dependencies first. The package leaves modules.dep to depmod at install time, so the
# dependencies are read from each module's own `depends=` (its .modinfo section).
module_order() {
    local moddir=$1
    python3 - "$moddir" <<'EOF'
import lzma, os, re, sys
moddir = sys.argv[1]
paths = {}
for root, _, files in os.walk(moddir):
    for f in files:
        if ".ko" in f:
            paths[f.split(".ko")[0].replace("-", "_")] = os.path.relpath(os.path.join(root, f), moddir)
def depends(name):
    raw = open(os.path.join(moddir, paths[name]), "rb").read()
    if paths[name].endswith(".xz"):
        raw = lzma.decompress(raw)
    m = re.search(rb"\0depends=([^\0]*)\0", raw)
    return [d.replace("-", "_") for d in m.group(1).decode().split(",") if d] if m else []
order, seen = [], set()
def visit(name):
    if name in seen:
        return
    seen.add(name)
    for d in depends(name):
        visit(d)
    order.append(paths[name])
for name in ["virtio_pci", "9pnet_virtio", "9p", "overlay"]:
    if name in paths:  # built in where absent
        visit(name)
print("\n".join(order))
EOF
}

# A busybox initramfs with the 9p and overlay modules and integration-tests/vm/init.
build_initrd() {
    local pkg=$1 dir="$cache/$1"
    local release
    release=$(ls "$dir/lib/modules")
    local key
    key=$(cat "$here/init" "$0" /bin/busybox | sha256sum | cut -c1-16)
    local img="$dir/initrd-$key.cpio.gz"
    if [ ! -f "$img" ]; then
        local tree
        tree=$(mktemp -d)
        mkdir -p "$tree"/{bin,proc,sys,dev,modules}
        cp /bin/busybox "$tree/bin/busybox"
        cp "$here/init" "$tree/init"
        chmod 755 "$tree/init"
        local moddir="$dir/lib/modules/$release"
        : >"$tree/modules/order"
        while read -r rel; do
            [ -n "$rel" ] || continue
            local base
            base=$(basename "$rel")
            case "$base" in
            *.ko.xz) xz -dc "$moddir/$rel" >"$tree/modules/${base%.xz}"; base=${base%.xz} ;;
            *.ko.zst) zstd -qdc "$moddir/$rel" >"$tree/modules/${base%.zst}"; base=${base%.zst} ;;
            *) cp "$moddir/$rel" "$tree/modules/$base" ;;
            esac
            echo "$base" >>"$tree/modules/order"
        done < <(module_order "$moddir")
        rm -f "$dir"/initrd-*.cpio.gz
        (cd "$tree" && find . | cpio -o -H newc --quiet | gzip -1) >"$img.tmp"
        mv "$img.tmp" "$img"
        rm -rf "$tree"
    fi
    echo "$img"
}

# Test binaries of the integration-test crate, by target name (built once, on the host).
declare -A test_bin=()
find_test_binaries() {
    local line name path
    while read -r name path; do
        test_bin[$name]=$path
    done < <(cargo test --locked --no-run --message-format=json -p warden-integration-tests 2>/dev/null \
        | python3 -c '
import sys, json
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])
')
    [ ${#test_bin[@]} -gt 0 ] || die "no integration-test binaries: cargo test --no-run failed"
    [ -x "$repo/target/debug/warden" ] || die "target/debug/warden is missing: cargo build --bins first"
}

# The script the guest runs (it reads it from the shared host tree).
write_guest_script() {
    local script=$1
    {
        echo '#!/bin/sh'
        echo "export PATH=$repo/target/debug:$HOME/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        echo "export HOME=$HOME LANG=C.UTF-8 RUST_BACKTRACE=1 WARDEN_TEST_STORM=${WARDEN_TEST_STORM:-3000} WARDEN_TEST_DISPOSABLE=1"
        echo "cd $repo"
        if [ -n "$shell_command" ]; then
            printf 'echo WARDEN-VM-TEST-START command\n'
            printf 'sh -c %q 2>&1\n' "$shell_command"
            printf 'echo "WARDEN-VM-TEST-END command $?"\n'
        else
            local t name filter
            for t in "${tests[@]}"; do
                name=${t%%:*}
                filter=
                [ "$name" = "$t" ] || filter=${t#*:}
                [ -n "${test_bin[$name]:-}" ] || die "no integration-test target named $name"
                printf 'echo WARDEN-VM-TEST-START %s\n' "$t"
                printf '%q --color=never %q 2>&1\n' "${test_bin[$name]}" "$filter"
                printf 'echo "WARDEN-VM-TEST-END %s $?"\n' "$t"
            done
        fi
    } >"$script"
}

# Boots one kernel and runs the guest script; leaves console.log and verdict in its folder.
boot() {
    local pkg label dir out lsm
    pkg=$(pkg_of "$1") label=$(label_of "$1") lsm=$(lsm_of "$1")
    dir="$cache/$pkg" out="$out_root/$label"
    local vmlinuz initrd
    vmlinuz=$(ls "$dir"/boot/vmlinuz-*)
    initrd=$(build_initrd "$pkg")
    rm -f "$out/console.log" "$out/verdict"
    local started=$SECONDS
    # One emulated CPU thread: with multi-threaded TCG the code patching of a static key while
    # syscall tracepoints attach or detach oopsed the guest (3 of ~260 sessions on 6.12).
    timeout --kill-after=10 "$timeout_secs" qemu-system-x86_64 \
        -accel "tcg,thread=$tcg_thread" -cpu max -smp 2 -m 4G \
        -kernel "$vmlinuz" -initrd "$initrd" \
        -append "console=ttyS0 lsm=$lsm panic=-1 quiet warden.script=$out/guest.sh" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
        -nodefaults -display none -no-reboot -serial "file:$out/console.log" -monitor none \
        </dev/null >"$out/qemu.log" 2>&1 || echo "qemu exited $? (timeout: ${timeout_secs}s)" >>"$out/qemu.log"
    echo "$((SECONDS - started))" >"$out/seconds"
}

# Reads a guest's console into: per test target, pass/fail and counts.
verdict() {
    local label out
    label=$(label_of "$1") out="$out_root/$(label_of "$1")"
    python3 - "$out/console.log" "$label" "$(cat "$out/seconds")" <<'EOF'
import re, sys
path, pkg, secs = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path, "rb").read().decode("utf-8", "replace").replace("\r", "")
booted = re.search(r"^WARDEN-VM-BOOTED (\S+)", text, re.M)
abort = re.search(r"^WARDEN-VM-ABORT (.*)$", text, re.M)
ended = re.search(r"^WARDEN-VM-EXIT (\d+)", text, re.M)
passed = failed = 0
rows = []
for m in re.finditer(r"^WARDEN-VM-TEST-START (\S+)\n(.*?)^WARDEN-VM-TEST-END \S+ (\d+)", text, re.M | re.S):
    name, body, rc = m.group(1), m.group(2), int(m.group(3))
    p = sum(int(x) for x in re.findall(r"test result: \w+\. (\d+) passed", body))
    f = sum(int(x) for x in re.findall(r"; (\d+) failed", body))
    if rc != 0 and f == 0:
        f = 1  # the binary failed without a test result (crashed, or a command failed)
    passed += p
    failed += f
    # For a failure, the test's name and the first lines of its panic, so that a CI log that
    # only keeps the summary still says what broke.
    why = []
    if rc != 0:
        for t in re.finditer(r"^---- (\S+) stdout ----\n(.*?)(?=^---- |^failures:$|\Z)", body, re.M | re.S):
            lines = [l for l in t.group(2).splitlines() if l.strip() and "RUST_BACKTRACE" not in l]
            why.append(f"{t.group(1)}: " + " | ".join(lines[:4])[:600])
    rows.append((name, "ok" if rc == 0 else "FAILED", p, f, why))
started = set(re.findall(r"^WARDEN-VM-TEST-START (\S+)", text, re.M))
unfinished = started - {r[0] for r in rows}
problem = None
if abort:
    problem = "guest aborted: " + abort.group(1)
elif not booted:
    problem = "the guest never reached its init (see console.log, qemu.log)"
elif unfinished:
    problem = "did not finish: " + ", ".join(sorted(unfinished)) + " (timeout or guest crash)"
elif not ended:
    problem = "the guest did not power off cleanly"
if re.search(r"(Oops|BUG|Kernel panic)[: -]", text):
    problem = (problem + "; " if problem else "") + "the guest kernel oopsed (see console.log)"
if problem:
    failed += 1
print(f"{pkg}  ({booted.group(1) if booted else '?'}, {secs}s)")
for name, status, p, f, why in rows:
    print(f"  {status:6}  {name:40} {p} passed, {f} failed")
    for w in why:
        print(f"          {w}")
if problem:
    print(f"  FAILED  {problem}")
print(f"COUNTS {passed} {failed}")
EOF
}

if [ -n "$fetch_only" ]; then
    for k in "${kernels[@]}"; do
        fetch_kernel "$(pkg_of "$k")"
        log "$k: $(build_initrd "$(pkg_of "$k")")"
    done
    exit 0
fi
[ -n "$shell_command" ] || find_test_binaries
for k in "${kernels[@]}"; do
    fetch_kernel "$(pkg_of "$k")"
    mkdir -p "$out_root/$(label_of "$k")"
    write_guest_script "$out_root/$(label_of "$k")/guest.sh"
done

log "booting ${#kernels[@]} kernel(s), $jobs at a time: ${kernels[*]}"
running=0
for k in "${kernels[@]}"; do
    boot "$k" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

total_pass=0
total_fail=0
for k in "${kernels[@]}"; do
    report=$(verdict "$k")
    printf '%s\n' "$report" | grep -v '^COUNTS'
    read -r _ p f < <(printf '%s\n' "$report" | grep '^COUNTS')
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    if [ -n "$shell_command" ] || [ "$f" -gt 0 ]; then
        console="$out_root/$(label_of "$k")/console.log"
        log "$k: console: $console"
        [ -z "$shell_command" ] || sed -n '/^WARDEN-VM-TEST-START/,/^WARDEN-VM-TEST-END/p' "$console"
    fi
done
echo "matrix: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
