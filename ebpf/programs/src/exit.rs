//! sched_process_exit: reported once per process, when its last thread exits.
use aya_ebpf::{helpers::bpf_get_current_task, programs::TracePointContext};
use warden_common::{EventKind, ExitEvent, OFFSET_ABSENT};

use crate::{emit, maps, task};

#[inline(always)]
pub fn on_exit(ctx: &TracePointContext) {
    let Some(cgroup_id) = maps::current_session() else {
        return;
    };
    let off = maps::offsets();
    let header = emit::header(EventKind::Exit, cgroup_id);
    let last_thread = if off.exit_group_dead != OFFSET_ABSENT {
        unsafe { ctx.read_at::<u8>(off.exit_group_dead as usize) }.unwrap_or(0) != 0
    } else {
        // Older kernels: approximate with the thread-group leader.
        header.pid == header.tid
    };
    if !last_thread {
        return;
    }
    let Some(mut entry) = emit::reserve::<ExitEvent>(EventKind::Exit) else {
        return;
    };
    let cur = unsafe { bpf_get_current_task() } as *const u8;
    entry.write(ExitEvent {
        exit_code: unsafe { task::read::<u32>(cur, off.task_exit_code) }.unwrap_or(0),
        ppid: unsafe { task::parent_tgid(cur, &off) },
        header,
    });
    emit::submit(entry);
}
