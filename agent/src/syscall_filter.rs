//! The seccomp filter. Everything is allowed except:
//! - execve/execveat: held for the supervisor's exec gate, which decides and replies;
//! - calls that would let the agent out from under the supervisor: also sent to the
//!   supervisor, which refuses them with EPERM and records the attempt.
//!
//! Going through the supervisor for refusals (rather than a silent errno in the filter) is what
//! makes every attempt visible. If the supervisor is gone, notified calls fail (ENOSYS): the
//! sandbox fails closed.
use crate::sockets::{self, SOCK_TYPE_MASK};
use libseccomp::{
    ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall, error::SeccompError,
};

/// Always refused, whatever their arguments.
pub const REFUSED: &[&str] = &[
    // debugging or writing other processes
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    // the kernel's own programmability
    "bpf",
    "perf_event_open",
    // file-system namespaces
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "chroot",
    "setns",
    // kernel code
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    // io_uring runs system calls the filter never sees
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // the kernel keyring (credentials of other sessions of the user)
    "keyctl",
    "add_key",
    "request_key",
    // a file by its handle, past every path rule (root's CAP_DAC_READ_SEARCH)
    "open_by_handle_at",
];

pub const EXEC: &[&str] = &["execve", "execveat"];

/// The calls that send a signal to a pid (the supervisor decides them: its exec_gate/signals.rs).
pub const SIGNALS: &[&str] = &[
    "kill",
    "tkill",
    "tgkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
];

const CLONE_NEWUSER: u64 = 0x1000_0000;
const S_IFMT: u64 = 0o170000;
const S_IFCHR: u64 = 0o020000;
const S_IFBLK: u64 = 0o060000;
const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541c;
const F_SETOWN: u64 = 8;
const F_SETOWN_EX: u64 = 15;
const FIOSETOWN: u64 = 0x8901;
const SIOCSPGRP: u64 = 0x8902;

/// Argument `index` equals `value` as the kernel reads an int argument: seccomp compares all
/// 64 bits of the register, the kernel only the low 32, so a plain comparison would let
/// `value | 1 << 32` through to the kernel as `value`.
fn int_arg(index: u32, value: u64) -> ScmpArgCompare {
    ScmpArgCompare::new(index, ScmpCompareOp::MaskedEqual(0xffff_ffff), value)
}

/// The alternatives that together match every value of int argument `index` outside
/// `allowed`: each value below the largest allowed one, and anything above it (compared on
/// all 64 bits, so that a value with high bits set is never taken for an allowed one).
fn outside(index: u32, allowed: &[u64]) -> Vec<ScmpArgCompare> {
    let top = allowed.iter().copied().max().unwrap_or(0);
    (0..top)
        .filter(|v| !allowed.contains(v))
        .map(|v| int_arg(index, v))
        .chain(std::iter::once(ScmpArgCompare::new(
            index,
            ScmpCompareOp::Greater,
            top,
        )))
        .collect()
}

/// The socket types (without SOCK_NONBLOCK / SOCK_CLOEXEC) outside `allowed`.
fn types_outside(allowed: &[u64]) -> impl Iterator<Item = ScmpArgCompare> + '_ {
    (0..=SOCK_TYPE_MASK)
        .filter(|t| !allowed.contains(t))
        .map(|t| ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(SOCK_TYPE_MASK), t))
}

/// `socket` and `socketpair` go to the supervisor (which refuses and records them) unless
/// family, type and protocol are in [`sockets::allowlist`]: an allowlist, so that a family
/// nobody thought of (vsock to the hypervisor, TIPC, RDS, SCTP, Bluetooth, CAN, XDP, ping
/// sockets unless the policy allows ICMP...) is refused too.
fn socket_rules(f: &mut ScmpFilterContext, name: &str, icmp: bool) -> Result<(), SeccompError> {
    let allowlist = sockets::allowlist(icmp);
    let families: Vec<u64> = allowlist.iter().map(|a| a.family).collect();
    for family in outside(0, &families) {
        rule(f, name, &[family])?;
    }
    for allowed in &allowlist {
        let family = int_arg(0, allowed.family);
        let types: Vec<u64> = allowed.types.iter().map(|(t, _)| *t).collect();
        for t in types_outside(&types) {
            rule(f, name, &[family, t])?;
        }
        for (t, protocols) in &allowed.types {
            let t = ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(SOCK_TYPE_MASK), *t);
            for protocol in outside(2, protocols) {
                rule(f, name, &[family, t, protocol])?;
            }
        }
    }
    Ok(())
}

fn rule(f: &mut ScmpFilterContext, name: &str, cmp: &[ScmpArgCompare]) -> Result<(), SeccompError> {
    let sc = ScmpSyscall::from_name(name)?;
    if cmp.is_empty() {
        f.add_rule(ScmpAction::Notify, sc)?;
    } else {
        f.add_rule_conditional(ScmpAction::Notify, sc, cmp)?;
    }
    Ok(())
}

/// Landlock ABI that confines truncate(2) (Linux 6.2).
pub const LANDLOCK_TRUNCATE_ABI: u32 = 3;
/// Landlock ABI that scopes signals to the sandbox (Linux 6.12).
pub const LANDLOCK_SCOPE_ABI: u32 = 6;

/// `landlock_abi`: what the kernel's Landlock offers; where it cannot confine a call, the
/// filter refuses the call instead (see `KernelLayer` in the requirements crate). `icmp`: the
/// network policy allows ICMP echo (ping sockets).
pub fn build(
    supervisor_pid: u32,
    landlock_abi: u32,
    icmp: bool,
) -> Result<ScmpFilterContext, SeccompError> {
    let mut f = ScmpFilterContext::new(ScmpAction::Allow)?;
    // A binary tree of syscall numbers instead of a linear list: every call of the agent runs
    // this filter (except those the kernel's action cache already knows to allow).
    f.set_filter_attr(libseccomp::ScmpFilterAttr::CtlOptimize, 2)?;
    for name in EXEC.iter().chain(
        REFUSED
            .iter()
            .filter(|n| !crate::test_layers::without(&format!("refuse:{n}"))),
    ) {
        rule(&mut f, name, &[])?;
    }
    // New user namespaces (they give the agent root-like powers in a fresh namespace).
    let newuser = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(CLONE_NEWUSER), CLONE_NEWUSER);
    rule(&mut f, "unshare", &[newuser])?;
    rule(&mut f, "clone", &[newuser])?;
    // clone3 passes its flags in memory the filter cannot read: answer "not implemented" so
    // that libc falls back to clone, which the rule above inspects.
    f.add_rule(
        ScmpAction::Errno(libc::ENOSYS),
        ScmpSyscall::from_name("clone3")?,
    )?;
    for name in ["socket", "socketpair"] {
        socket_rules(&mut f, name, icmp)?;
    }
    // Typing into the terminal's input queue: the agent could answer its own approval
    // prompt (or command the shell that ran Warden).
    // Device nodes made in a write root would open the disk or the kernel's memory past the
    // rules on /dev (a root agent could make them).
    for (name, mode) in [("mknod", 1), ("mknodat", 2)] {
        for kind in [S_IFCHR, S_IFBLK] {
            let cmp = ScmpArgCompare::new(mode, ScmpCompareOp::MaskedEqual(S_IFMT), kind);
            rule(&mut f, name, &[cmp])?;
        }
    }
    for request in [TIOCSTI, TIOCLINUX] {
        rule(&mut f, "ioctl", &[int_arg(1, request)])?;
    }
    let pid = int_arg(0, u64::from(supervisor_pid));
    rule(&mut f, "pidfd_open", &[pid])?;
    let signal_rules = if crate::test_layers::without("signal-rules") {
        &[][..]
    } else {
        SIGNALS
    };
    for name in signal_rules {
        if landlock_abi < LANDLOCK_SCOPE_ABI {
            // No signal scoping in the kernel: the supervisor sees every signal and lets
            // through those whose every target is in the session (not the supervisor's
            // threads, nor the process group it shares with the command, nor kill(-1)).
            rule(&mut f, name, &[])?;
        } else {
            // Landlock refuses signals leaving the sandbox; this records those aimed at the
            // supervisor.
            rule(&mut f, name, &[pid])?;
        }
    }
    if landlock_abi < LANDLOCK_TRUNCATE_ABI {
        // Landlock cannot see truncate by path: refused everywhere (ftruncate needs a file
        // opened for writing, which Landlock does confine).
        rule(&mut f, "truncate", &[])?;
    }
    if landlock_abi < LANDLOCK_SCOPE_ABI {
        // A pidfd can also come from opening /proc/PID: nothing tells its target.
        rule(&mut f, "pidfd_send_signal", &[])?;
        // The owner of a file gets SIGIO (fatal by default) when it becomes ready: the
        // supervisor decides F_SETOWN like a kill of that pid; the forms whose target is in
        // memory (F_SETOWN_EX, FIOSETOWN, SIOCSPGRP) are refused.
        for cmd in [F_SETOWN, F_SETOWN_EX] {
            rule(&mut f, "fcntl", &[int_arg(1, cmd)])?;
        }
        for request in [FIOSETOWN, SIOCSPGRP] {
            rule(&mut f, "ioctl", &[int_arg(1, request)])?;
        }
    }
    Ok(f)
}
