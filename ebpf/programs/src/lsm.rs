//! BPF LSM programs (the `bpf_lsm` hook tier): in-kernel denial beside Landlock and seccomp,
//! decided on the kernel's own objects, so that no spelling, race or other door gets around
//! them.
//!
//! Threats, each also held by another layer where the kernel has it:
//! - signals (every door: kill, tgkill, sigqueue, pidfd) and ptrace-mode access (ptrace,
//!   /proc/PID/mem and environ) to tasks outside the session: decided on the target task's
//!   cgroup, not on a pid that could be reused (Landlock scoping holds them from 6.12, the
//!   supervisor's seccomp decision below that);
//! - bpf() from the session (seccomp refuses it);
//! - pathname UNIX sockets outside the session on kernels without the cgroup UNIX hooks
//!   (before 6.7), decided as those decide (`unix_sockets.rs`), with the same records;
//! - opening a protected file (credentials, Warden's state), found by the identity of the
//!   file and its parent directories, whatever path, bind mount or link reached it, and
//!   creating, linking, removing or renaming names beneath a protected path (Landlock holds
//!   them by path).
//!
//! A program returns 0 to allow or a negative errno; the first program that denies decides.
use aya_ebpf::{helpers::bpf_get_current_pid_tgid, programs::LsmContext};
use warden_common::{
    CALIBRATION_COUNT_ONLY, EventKind, LSM_BPF, LSM_FILE_OPEN, LSM_INODE_CREATE, LSM_INODE_LINK,
    LSM_INODE_MKDIR, LSM_INODE_MKNOD, LSM_INODE_RENAME, LSM_INODE_RMDIR, LSM_INODE_SYMLINK,
    LSM_INODE_UNLINK, LSM_PTRACE, LSM_TASK_KILL, LsmEvent, NET_OP_CONNECT, NET_OP_SENDMSG,
    PROTECTED_DEPTH,
};

use crate::{
    emit,
    maps::{self, CALIBRATION, PROTECTED},
    task::read,
};

const EPERM: i32 = 1;
const EACCES: i32 = 13;

/// The session cgroup `task` belongs to (its ancestor at the sessions' depth), or 0.
#[inline(always)]
fn session_of(task: *const u8) -> u64 {
    let off = maps::offsets();
    let want = maps::session_level();
    unsafe {
        let Some(css_set) = read::<*const u8>(task, off.task_cgroups) else {
            return 0;
        };
        let Some(mut cgrp) = read::<*const u8>(css_set, off.css_set_dfl_cgrp) else {
            return 0;
        };
        let Some(mut level) = read::<i32>(cgrp, off.cgroup_level) else {
            return 0;
        };
        if level < want as i32 {
            return 0;
        }
        // Sessions sit a few levels down; what the agent nests below them is bounded by the
        // kernel's cgroup depth, and deeper nesting is denied (fails closed).
        for _ in 0..16 {
            if level == want as i32 {
                break;
            }
            let Some(parent_css) = read::<*const u8>(cgrp, off.cgroup_parent) else {
                return 0;
            };
            cgrp = parent_css.wrapping_sub(off.cgroup_self as usize);
            level -= 1;
        }
        if level != want as i32 {
            return 0;
        }
        let Some(kn) = read::<*const u8>(cgrp, off.cgroup_kn) else {
            return 0;
        };
        read::<u64>(kn, off.kn_id).unwrap_or(0)
    }
}

#[inline(always)]
fn deny(hook: u32, errno: i32, cgroup_id: u64, target_pid: u32, arg: u32, rule: u32) -> i32 {
    if let Some(mut entry) = emit::reserve::<LsmEvent>(EventKind::Lsm) {
        entry.write(LsmEvent {
            header: emit::header(EventKind::Lsm, cgroup_id),
            hook,
            errno: errno as u32,
            target_pid,
            arg,
            rule,
            _pad: 0,
        });
        emit::submit(entry);
    }
    -errno
}

/// A task of the session reaching `target` outside it.
#[inline(always)]
fn outside(target: *const u8) -> Option<(u64, u32)> {
    let session = maps::current_session()?;
    if session_of(target) == session {
        return None;
    }
    let tgid = unsafe { read::<u32>(target, maps::offsets().task_tgid) }.unwrap_or(0);
    Some((session, tgid))
}

/// `task_kill(struct task_struct *p, struct kernel_siginfo *info, int sig, const struct cred *)`.
#[inline(always)]
pub fn task_kill(ctx: &LsmContext) -> i32 {
    let target: *const u8 = ctx.arg(0);
    let sig: i32 = ctx.arg(2);
    match outside(target) {
        Some((session, pid)) => deny(LSM_TASK_KILL, EPERM, session, pid, sig as u32, 0),
        None => 0,
    }
}

/// `ptrace_access_check(struct task_struct *child, unsigned int mode)`.
#[inline(always)]
pub fn ptrace_access_check(ctx: &LsmContext) -> i32 {
    let target: *const u8 = ctx.arg(0);
    let mode: u32 = ctx.arg(1);
    match outside(target) {
        Some((session, pid)) => deny(LSM_PTRACE, EPERM, session, pid, mode, 0),
        None => 0,
    }
}

/// `bpf(int cmd, union bpf_attr *attr, unsigned int size, ...)`.
#[inline(always)]
pub fn bpf(ctx: &LsmContext) -> i32 {
    let cmd: i32 = ctx.arg(0);
    match maps::current_session() {
        Some(session) => deny(LSM_BPF, EPERM, session, 0, cmd as u32, 0),
        None => 0,
    }
}

/// `socket_connect(struct socket *sock, struct sockaddr *address, int addrlen)`.
#[inline(always)]
pub fn socket_connect(ctx: &LsmContext) -> i32 {
    crate::unix_sockets::on_lsm(ctx.arg(1), ctx.arg(2), NET_OP_CONNECT)
}

/// `socket_sendmsg(struct socket *sock, struct msghdr *msg, int size)`: the destination of
/// an unconnected datagram (a connected socket's peer was decided at connect).
#[inline(always)]
pub fn socket_sendmsg(ctx: &LsmContext) -> i32 {
    let msg: *const u8 = ctx.arg(1);
    let off = maps::offsets();
    let Some(name) = (unsafe { read::<*const u8>(msg, off.msghdr_name) }) else {
        return 0;
    };
    let len = unsafe { read::<i32>(msg, off.msghdr_namelen) }.unwrap_or(0);
    crate::unix_sockets::on_lsm(name, len, NET_OP_SENDMSG)
}

/// The inode behind `dentry` (null for a negative dentry).
#[inline(always)]
fn inode_of(dentry: *const u8) -> *const u8 {
    unsafe { read::<*const u8>(dentry, maps::offsets().dentry_inode) }.unwrap_or(core::ptr::null())
}

#[inline(always)]
fn is_dir(inode: *const u8) -> bool {
    const S_IFMT: u16 = 0o170000;
    const S_IFDIR: u16 = 0o040000;
    unsafe { read::<u16>(inode, maps::offsets().inode_mode) }.is_some_and(|m| m & S_IFMT == S_IFDIR)
}

/// `file_open(struct file *file)`.
#[inline(always)]
pub fn file_open(ctx: &LsmContext) -> i32 {
    let file: *const u8 = ctx.arg(0);
    let off = maps::offsets();
    let Some(dentry) = (unsafe { read::<*const u8>(file, off.file_dentry) }) else {
        return 0;
    };
    if let Some(cal) = CALIBRATION.get_ptr_mut(0) {
        let cal = unsafe { &mut *cal };
        if cal.tid != 0 && cal.tid == bpf_get_current_pid_tgid() as u32 {
            cal.seen += 1;
            let inode = inode_of(dentry);
            if cal.rule != CALIBRATION_COUNT_ONLY && !inode.is_null() {
                let _ = PROTECTED.insert(&(inode as u64), &cal.rule, 0);
            }
            return 0;
        }
    }
    let Some(session) = maps::current_session() else {
        return 0;
    };
    // Directories may be listed everywhere, protected ones and those beneath them included
    // (their names are visible, as under Landlock); no other file beneath them may be opened.
    if is_dir(inode_of(dentry)) {
        return 0;
    }
    match protected(dentry) {
        Some(rule) => deny(LSM_FILE_OPEN, EACCES, session, 0, 0, rule),
        None => 0,
    }
}

/// The protected path `dentry` is or lies beneath: its inode (a negative dentry has none),
/// then each directory above it on its file system.
#[inline(always)]
fn protected(dentry: *const u8) -> Option<u32> {
    let parent_off = maps::offsets().dentry_parent;
    let mut d = dentry;
    for _ in 0..PROTECTED_DEPTH {
        let inode = inode_of(d);
        if !inode.is_null()
            && let Some(rule) = unsafe { PROTECTED.get(&(inode as u64)) }
        {
            return Some(*rule);
        }
        let parent = unsafe { read::<*const u8>(d, parent_off) }?;
        if parent == d {
            return None;
        }
        d = parent;
    }
    None
}

/// A change to the name space beneath a protected path: `dentry` is the name made, linked
/// from, removed or renamed. Planting a file in `~/.ssh`, moving a key out of it, or linking
/// it elsewhere (where the open would not pass beneath the protected directory).
#[inline(always)]
fn name_change(hook: u32, dentry: *const u8) -> i32 {
    let Some(session) = maps::current_session() else {
        return 0;
    };
    match protected(dentry) {
        Some(rule) => deny(hook, EACCES, session, 0, 0, rule),
        None => 0,
    }
}

/// `inode_create(struct inode *dir, struct dentry *dentry, umode_t mode)`.
#[inline(always)]
pub fn inode_create(ctx: &LsmContext) -> i32 {
    name_change(LSM_INODE_CREATE, ctx.arg(1))
}

/// `inode_mkdir(struct inode *dir, struct dentry *dentry, umode_t mode)`.
#[inline(always)]
pub fn inode_mkdir(ctx: &LsmContext) -> i32 {
    name_change(LSM_INODE_MKDIR, ctx.arg(1))
}

/// `inode_mknod(struct inode *dir, struct dentry *dentry, umode_t mode, dev_t dev)`: FIFOs
/// and sockets (device nodes are refused by seccomp already).
#[inline(always)]
pub fn inode_mknod(ctx: &LsmContext) -> i32 {
    name_change(LSM_INODE_MKNOD, ctx.arg(1))
}

/// `inode_symlink(struct inode *dir, struct dentry *dentry, const char *old_name)`.
#[inline(always)]
pub fn inode_symlink(ctx: &LsmContext) -> i32 {
    name_change(LSM_INODE_SYMLINK, ctx.arg(1))
}

/// `inode_rmdir(struct inode *dir, struct dentry *dentry)`: an empty protected directory
/// removed (and made again by the agent) would let it plant what is read there later.
#[inline(always)]
pub fn inode_rmdir(ctx: &LsmContext) -> i32 {
    name_change(LSM_INODE_RMDIR, ctx.arg(1))
}

/// `inode_link(struct dentry *old_dentry, struct inode *dir, struct dentry *new_dentry)`.
#[inline(always)]
pub fn inode_link(ctx: &LsmContext) -> i32 {
    match name_change(LSM_INODE_LINK, ctx.arg(0)) {
        0 => name_change(LSM_INODE_LINK, ctx.arg(2)),
        denied => denied,
    }
}

/// `inode_unlink(struct inode *dir, struct dentry *dentry)`.
#[inline(always)]
pub fn inode_unlink(ctx: &LsmContext) -> i32 {
    name_change(LSM_INODE_UNLINK, ctx.arg(1))
}

/// `inode_rename(struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
/// struct dentry *new_dentry)`: out of, or into, a protected directory.
#[inline(always)]
pub fn inode_rename(ctx: &LsmContext) -> i32 {
    match name_change(LSM_INODE_RENAME, ctx.arg(1)) {
        0 => name_change(LSM_INODE_RENAME, ctx.arg(3)),
        denied => denied,
    }
}
