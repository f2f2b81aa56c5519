//! sched_process_exec: the new image is in place and has not run an instruction yet.
use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_task, bpf_get_current_uid_gid, bpf_probe_read_kernel_str_bytes,
        bpf_probe_read_user_buf,
    },
    programs::TracePointContext,
};
use warden_common::{
    ARGV_MAX, EXEC_ARGV_TRUNCATED, EXEC_ARGV_UNREADABLE, EXEC_FILENAME_TRUNCATED, EventKind,
    ExecEvent, FILENAME_MAX,
};

use aya_log_ebpf::warn;

use crate::{emit, maps, task};

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
    emit::submit(entry);
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
