//! File system calls of the session: arguments kept at the call's start, one record with the
//! paths and the result at its return. Paths are read at the return because only then are
//! they sure to be in memory (the kernel itself has just read them).
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user, bpf_probe_read_user_str_bytes},
    programs::TracePointContext,
};
use warden_common::{
    AT_FDCWD, EventKind, FILE_PATH_MAX, FILE_PATH_TRUNCATED, FILE_PATH_UNREADABLE, FILE_PATH2_MAX,
    FILE_PATH2_TRUNCATED, FileCall, FileEvent,
};

use crate::{emit, maps};

/// Where a call keeps its flags.
#[derive(Clone, Copy)]
pub enum Flags {
    None,
    /// In argument N.
    Arg(usize),
    /// In the first 8 bytes of the struct argument N points to (openat2's `open_how`).
    Deref(usize),
}

/// Which arguments of a call are what.
#[derive(Clone, Copy)]
pub struct Shape {
    pub op: u32,
    pub dfd: Option<usize>,
    pub path: usize,
    pub path2: Option<usize>,
    pub flags: Flags,
}

#[inline(always)]
fn arg(ctx: &TracePointContext, base: u32, n: usize) -> u64 {
    unsafe { ctx.read_at::<u64>(base as usize + 8 * n) }.unwrap_or(0)
}

#[inline(always)]
pub fn on_enter(ctx: &TracePointContext, shape: Shape) {
    if maps::current_session().is_none() {
        return;
    }
    let base = maps::offsets().syscall_args;
    let call = FileCall {
        op: shape.op,
        dfd: shape.dfd.map_or(AT_FDCWD, |n| arg(ctx, base, n) as i32),
        flags: match shape.flags {
            Flags::None => 0,
            Flags::Arg(n) => arg(ctx, base, n),
            Flags::Deref(n) => {
                unsafe { bpf_probe_read_user(arg(ctx, base, n) as *const u64) }.unwrap_or(0)
            }
        },
        path: arg(ctx, base, shape.path),
        path2: shape.path2.map_or(0, |n| arg(ctx, base, n)),
    };
    let tid = bpf_get_current_pid_tgid() as u32;
    let _ = maps::FILE_CALLS.insert(&tid, &call, 0);
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

#[inline(always)]
pub fn on_exit(ctx: &TracePointContext, op: u32) {
    let Some(cgroup_id) = maps::current_session() else {
        return;
    };
    let tid = bpf_get_current_pid_tgid() as u32;
    let call = match unsafe { maps::FILE_CALLS.get(&tid) } {
        Some(c) if c.op == op => *c,
        _ => return,
    };
    let _ = maps::FILE_CALLS.remove(&tid);
    let Some(mut entry) = emit::reserve::<FileEvent>(EventKind::File) else {
        return;
    };
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    ev.header = emit::header(EventKind::File, cgroup_id);
    ev.op = call.op;
    ev.dfd = call.dfd;
    ev.flags = call.flags;
    ev.ret = unsafe { ctx.read_at::<i64>(maps::offsets().syscall_ret as usize) }.unwrap_or(0);
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
