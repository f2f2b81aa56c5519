//! File system calls of the session. The supervisor describes which system call numbers are
//! file operations (`FILE_SHAPES`); one record with the paths and the result is written when
//! the call returns. Paths are read then because only then are they sure to be in memory (the
//! kernel itself has just read them).
//!
//! Two hook tiers write the same record:
//! - `fexit` on the system call's own function (`__x64_sys_openat`...): one program per call,
//!   run only for that call, arguments and result at hand. No cost to other system calls.
//! - the observed calls' `syscalls:sys_enter_NAME`/`sys_exit_NAME` tracepoints where the
//!   kernel refuses fexit: arguments are kept at the start. Any syscall tracepoint puts every
//!   task of the machine on the slow system-call path; these at least run no program for the
//!   other calls (the raw `sys_enter`/`sys_exit` tracepoints did: measured, a getppid loop
//!   outside the session took 1.83x its time beside a session then, 1.29x now).
use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_probe_read_kernel, bpf_probe_read_user,
        bpf_probe_read_user_str_bytes,
    },
    programs::{FExitContext, TracePointContext},
};
use warden_common::{
    ARG_CREAT_FLAGS, ARG_NONE, AT_FDCWD, CREAT_FLAGS, EventKind, FILE_PATH_MAX,
    FILE_PATH_TRUNCATED, FILE_PATH_UNREADABLE, FILE_PATH2_MAX, FILE_PATH2_TRUNCATED, FileCall,
    FileEvent, FileShape, MAX_SYSCALL_NR,
};

use crate::{
    emit,
    maps::{self, FILE_CALLS, FILE_SHAPES},
};

#[inline(always)]
fn shape(nr: u64) -> Option<FileShape> {
    if nr >= MAX_SYSCALL_NR as u64 {
        return None;
    }
    FILE_SHAPES.get(nr as u32).copied().filter(|s| s.op != 0)
}

/// System call argument `n` from the saved user registers.
#[inline(always)]
fn arg(regs: *const u8, n: u8) -> u64 {
    let off = maps::regs_arg_offset(n);
    unsafe { bpf_probe_read_kernel(regs.add(off as usize) as *const u64) }.unwrap_or(0)
}

/// The system call number in the saved user registers.
#[inline(always)]
fn syscall_nr(regs: *const u8) -> u64 {
    let off = maps::offsets().regs_syscall_nr;
    unsafe { bpf_probe_read_kernel(regs.add(off as usize) as *const u64) }.unwrap_or(u64::MAX)
}

/// The call's arguments, as `s` says where they are (`arg(n)` reads argument n).
#[inline(always)]
fn call(arg: impl Fn(u8) -> u64, s: FileShape, cgroup_id: u64) -> FileCall {
    let opt = |n: u8| if n == ARG_NONE { None } else { Some(arg(n)) };
    let flags = match s.flags {
        ARG_CREAT_FLAGS => CREAT_FLAGS,
        n => match opt(n) {
            Some(f) if s.flags_deref != 0 => {
                unsafe { bpf_probe_read_user(f as *const u64) }.unwrap_or(0)
            }
            Some(f) => f,
            None => 0,
        },
    };
    FileCall {
        op: s.op as u32,
        cgroup_id,
        dfd: opt(s.dfd).map_or(AT_FDCWD, |d| d as i32),
        flags,
        path: arg(s.path),
        path2: opt(s.path2).unwrap_or(0),
    }
}

/// Keeps a call's arguments until it returns.
#[inline(always)]
fn keep(call: &FileCall) {
    let tid = bpf_get_current_pid_tgid() as u32;
    if FILE_CALLS.insert(&tid, call, 0).is_err() {
        emit::count_lost(EventKind::File);
    }
}

/// The call a thread started (and forget it).
#[inline(always)]
fn take() -> Option<FileCall> {
    let tid = bpf_get_current_pid_tgid() as u32;
    let call = unsafe { FILE_CALLS.get(&tid) }.copied()?;
    let _ = FILE_CALLS.remove(&tid);
    Some(call)
}

/// `syscalls:sys_enter_NAME`, attached to the observed calls only: the record holds the call
/// number and the six arguments.
#[inline(always)]
pub fn on_syscall_enter(ctx: &TracePointContext) {
    let off = maps::offsets();
    let nr: i32 = unsafe { ctx.read_at(off.sc_enter_nr as usize) }.unwrap_or(-1);
    let Some(s) = shape(nr as u64) else { return };
    let Some(cgroup_id) = maps::current_session() else {
        return;
    };
    let at = |n: u8| {
        let i = (n as usize).min(5);
        unsafe { ctx.read_at::<u64>(off.sc_enter_args as usize + 8 * i) }.unwrap_or(0)
    };
    keep(&call(at, s, cgroup_id));
}

/// `syscalls:sys_exit_NAME`.
#[inline(always)]
pub fn on_syscall_exit(ctx: &TracePointContext) {
    let Some(call) = take() else { return };
    let ret: i64 = unsafe { ctx.read_at(maps::offsets().sc_exit_ret as usize) }.unwrap_or(0);
    record(&call, ret);
}

/// fexit of `long __x64_sys_NAME(const struct pt_regs *regs)`: the arguments are still in
/// the registers the call was made with.
#[inline(always)]
pub fn on_return(ctx: &FExitContext) {
    let regs: *const u8 = ctx.arg(0);
    let Some(s) = shape(syscall_nr(regs)) else {
        return;
    };
    let Some(cgroup_id) = maps::current_session() else {
        return;
    };
    record(&call(|n| arg(regs, n), s, cgroup_id), ctx.arg::<i64>(1));
}

/// Copies a user string; returns its length and the `truncated` bits to set.
#[inline(always)]
fn user_str(ptr: u64, buf: &mut [u8], cut_bit: u32) -> (u16, u32) {
    let cap = buf.len();
    match unsafe { bpf_probe_read_user_str_bytes(ptr as *const u8, buf) } {
        Ok(s) if s.len() + 1 >= cap => (s.len() as u16, cut_bit),
        Ok(s) => (s.len() as u16, 0),
        Err(_) => (0, FILE_PATH_UNREADABLE),
    }
}

/// Writes the record of a finished call.
#[inline(always)]
fn record(call: &FileCall, ret: i64) {
    let Some(mut entry) = emit::reserve::<FileEvent>(EventKind::File) else {
        return;
    };
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    ev.header = emit::header(EventKind::File, call.cgroup_id);
    ev.op = call.op;
    ev.dfd = call.dfd;
    ev.flags = call.flags;
    ev.ret = ret;
    let (len, bits) = user_str(
        call.path,
        &mut ev.path[..FILE_PATH_MAX],
        FILE_PATH_TRUNCATED,
    );
    ev.path_len = len;
    ev.truncated = bits;
    ev.path2_len = 0;
    if call.path2 != 0 {
        let (len, bits) = user_str(
            call.path2,
            &mut ev.path2[..FILE_PATH2_MAX],
            FILE_PATH2_TRUNCATED,
        );
        ev.path2_len = len;
        ev.truncated |= bits;
    }
    emit::submit(entry);
}
