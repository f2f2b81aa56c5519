//! sched_process_fork (raw): `TP_PROTO(struct task_struct *parent, struct task_struct *child)`.
use aya_ebpf::programs::RawTracePointContext;
use warden_common::{EventKind, ForkEvent};

use crate::{emit, maps, task};

#[inline(always)]
pub fn on_fork(ctx: &RawTracePointContext) {
    let Some(cgroup_id) = maps::current_session() else {
        return;
    };
    let off = maps::offsets();
    let child: u64 = ctx.arg(1);
    let child = child as *const u8;
    let child_pid: u32 = unsafe { task::read(child, off.task_pid) }.unwrap_or(0);
    let child_tgid: u32 = unsafe { task::read(child, off.task_tgid) }.unwrap_or(0);
    // A new thread joins an existing process: the process tree does not change.
    if child_pid != child_tgid {
        return;
    }
    let Some(mut entry) = emit::reserve::<ForkEvent>(EventKind::Fork) else {
        return;
    };
    let header = emit::header(EventKind::Fork, cgroup_id);
    entry.write(ForkEvent {
        parent_pid: header.pid,
        child_pid: child_tgid,
        header,
    });
    emit::submit(entry);
}
