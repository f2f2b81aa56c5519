//! sched_process_exec: the new image is in place and has not run an instruction yet.
use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_task, bpf_get_current_uid_gid, bpf_probe_read_kernel_str_bytes,
        bpf_probe_read_user_buf, generated::bpf_send_signal,
    },
    programs::TracePointContext,
};
use warden_common::{
    ARGV_MAX, EXEC_ARGV_TRUNCATED, EXEC_ARGV_UNREADABLE, EXEC_FILENAME_TRUNCATED,
    EXEC_TOKEN_MISMATCH, EXEC_TOKEN_MISSING, EventKind, ExecEvent, ExecToken, FILENAME_MAX,
    FNV_OFFSET, TOKEN_TAIL_MAX, fnv1a_prefix,
};

use aya_log_ebpf::warn;

use crate::{
    emit,
    maps::{self, EXE_NAME, EXEC_TOKENS, SCRATCH},
    task,
};

#[inline(always)]
pub fn on_exec(ctx: &TracePointContext) {
    let Some(cgroup_id) = maps::current_session() else {
        return;
    };
    let Some(mut entry) = emit::reserve::<ExecEvent>(EventKind::Exec) else {
        return;
    };
    let off = maps::offsets();
    let ev = entry.as_mut_ptr();
    let ev = unsafe { &mut *ev };
    ev.header = emit::header(EventKind::Exec, cgroup_id);
    ev.flags = 0;
    let uid_gid = bpf_get_current_uid_gid();
    ev.uid = uid_gid as u32;
    ev.gid = (uid_gid >> 32) as u32;
    let cur = unsafe { bpf_get_current_task() } as *const u8;
    ev.ppid = unsafe { task::parent_tgid(cur, &off) };

    // `__data_loc char[]`: low 16 bits are the offset in the record, high 16 the length.
    let loc: u32 = unsafe { ctx.read_at(off.exec_filename_loc as usize) }.unwrap_or(0);
    let name_ptr = unsafe { (ctx.as_ptr() as *const u8).add((loc & 0xffff) as usize) };
    ev.filename_len = match unsafe { bpf_probe_read_kernel_str_bytes(name_ptr, &mut ev.filename) } {
        Ok(s) => s.len() as u32,
        Err(_) => 0,
    };
    // The recorded length includes the NUL; anything beyond the buffer was cut.
    if (loc >> 16) as usize > FILENAME_MAX {
        ev.flags |= EXEC_FILENAME_TRUNCATED;
    }

    read_argv(ctx, cur, &off, ev);
    check_token(ctx, cur, &off, ev);
    emit::submit(entry);
}

const SECCOMP_MODE_FILTER: u32 = 2;

/// For a process under the exec gate (it has a seccomp filter: the launcher's own exec, before
/// its filter, has none), the new image must be what the gate approved. Otherwise it is killed
/// here, before its first instruction.
#[inline(always)]
fn check_token(
    ctx: &TracePointContext,
    cur: *const u8,
    off: &warden_common::KernelOffsets,
    ev: &mut ExecEvent,
) {
    let mode: u32 = unsafe { task::read(cur, off.task_seccomp_mode) }.unwrap_or(0);
    if mode != SECCOMP_MODE_FILTER {
        return;
    }
    let old_pid: u32 = unsafe { ctx.read_at(off.exec_old_pid as usize) }.unwrap_or(0);
    let token = match unsafe { EXEC_TOKENS.get(&old_pid) } {
        Some(t) => *t,
        None => {
            ev.flags |= EXEC_TOKEN_MISSING;
            kill();
            return;
        }
    };
    let _ = EXEC_TOKENS.remove(&old_pid);
    let name_len = (ev.filename_len as usize).min(FILENAME_MAX - 1);
    let filename_ok = fnv1a_prefix(FNV_OFFSET, &ev.filename, name_len) == token.filename_hash;
    if !filename_ok || !tail_matches(cur, off, &token) || !exe_matches(cur, off, &token) {
        ev.flags |= EXEC_TOKEN_MISMATCH;
        kill();
    }
}

#[inline(always)]
fn tail_matches(cur: *const u8, off: &warden_common::KernelOffsets, token: &ExecToken) -> bool {
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
        return false;
    };
    let scratch = unsafe { &mut *scratch };
    let mm: *const u8 = match unsafe { task::read(cur, off.task_mm) } {
        Some(mm) => mm,
        None => return false,
    };
    let start: u64 = unsafe { task::read(mm, off.mm_arg_start) }.unwrap_or(0);
    let end: u64 = unsafe { task::read(mm, off.mm_arg_end) }.unwrap_or(0);
    if end < start || end - start < token.tail_len as u64 {
        return false;
    }
    let n = (token.tail_len as usize).min(TOKEN_TAIL_MAX);
    let n = n & (2 * TOKEN_TAIL_MAX - 1);
    if n > TOKEN_TAIL_MAX {
        return false;
    }
    if n > 0
        && unsafe { bpf_probe_read_user_buf((end - n as u64) as *const u8, &mut scratch[..n]) }
            .is_err()
    {
        return false;
    }
    fnv1a_prefix(FNV_OFFSET, scratch, n) == token.tail_hash
}

/// The file the new image runs (`mm->exe_file`): its name, and its inode where the gate
/// could know it.
#[inline(always)]
fn exe_matches(cur: *const u8, off: &warden_common::KernelOffsets, token: &ExecToken) -> bool {
    let Some(buf) = EXE_NAME.get_ptr_mut(0) else {
        return false;
    };
    let buf = unsafe { &mut *buf };
    let exe: Option<*const u8> = unsafe { task::read::<*const u8>(cur, off.task_mm) }
        .and_then(|mm| unsafe { task::read(mm, off.mm_exe_file) });
    let Some(exe) = exe else {
        return false;
    };
    if token.exe_ino != 0 {
        let inode: Option<*const u8> = unsafe { task::read(exe, off.file_inode) };
        let ino = inode.and_then(|i| unsafe { task::read::<u64>(i, off.inode_ino) });
        if ino != Some(token.exe_ino) {
            return false;
        }
    }
    let dentry: Option<*const u8> = unsafe { task::read(exe, off.file_dentry) };
    let name = dentry.and_then(|d| unsafe { task::read::<*const u8>(d, off.dentry_name) });
    let Some(name) = name else {
        return false;
    };
    let n = match unsafe { bpf_probe_read_kernel_str_bytes(name, buf) } {
        Ok(s) => s.len(),
        Err(_) => return false,
    };
    fnv1a_prefix(FNV_OFFSET, buf, n) == token.exe_name_hash
}

#[inline(always)]
fn kill() {
    const SIGKILL: u32 = 9;
    unsafe { bpf_send_signal(SIGKILL) };
}

#[inline(always)]
fn read_argv(
    ctx: &TracePointContext,
    cur: *const u8,
    off: &warden_common::KernelOffsets,
    ev: &mut ExecEvent,
) {
    ev.argv_len = 0;
    ev.argv_total_len = 0;
    let mm: *const u8 = match unsafe { task::read(cur, off.task_mm) } {
        Some(mm) if !(mm as *const u8).is_null() => mm,
        _ => {
            ev.flags |= EXEC_ARGV_UNREADABLE;
            return;
        }
    };
    let start: u64 = unsafe { task::read(mm, off.mm_arg_start) }.unwrap_or(0);
    let end: u64 = unsafe { task::read(mm, off.mm_arg_end) }.unwrap_or(0);
    if start == 0 || end <= start {
        ev.flags |= EXEC_ARGV_UNREADABLE;
        return;
    }
    let total = end - start;
    ev.argv_total_len = total;
    let mut len = total as usize;
    if len > ARGV_MAX {
        len = ARGV_MAX;
        ev.flags |= EXEC_ARGV_TRUNCATED;
    }
    // Mask for the verifier: it has to see the bound on the very register it checks.
    let len = len & (2 * ARGV_MAX - 1);
    if len == 0 || len > ARGV_MAX {
        return;
    }
    match unsafe { bpf_probe_read_user_buf(start as *const u8, &mut ev.argv[..len]) } {
        Ok(()) => ev.argv_len = len as u32,
        Err(err) => {
            // The event still counts the exec; the log says why its argv is missing.
            ev.flags |= EXEC_ARGV_UNREADABLE;
            warn!(
                ctx,
                "exec of pid {}: reading {} argv bytes failed ({})", ev.header.pid, len, err
            );
        }
    }
}
