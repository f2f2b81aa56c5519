//! Writing to the ring buffer, and counting what could not be written.
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated::bpf_ktime_get_boot_ns},
    maps::ring_buf::RingBufEntry,
};
use warden_common::{EventHeader, EventKind};

use crate::maps::{EVENTS, LOST, wakeup_bytes};

const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
const BPF_RB_AVAIL_DATA: u64 = 0;

/// Submits without waking user space unless the buffer is filling up: the supervisor drains on
/// a short timer anyway, and a wakeup per event costs more than the event (a context switch
/// and a write for every exec, fork and exit).
#[inline(always)]
pub fn submit<T>(entry: RingBufEntry<T>) {
    let flags = if EVENTS.query(BPF_RB_AVAIL_DATA) >= wakeup_bytes() {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    entry.submit(flags);
}

/// Reserves room for one `T`, or counts the event as lost.
#[inline(always)]
pub fn reserve<T: 'static>(kind: EventKind) -> Option<RingBufEntry<T>> {
    let entry = EVENTS.reserve::<T>(0);
    if entry.is_none() {
        count_lost(kind);
    }
    entry
}

/// Counts an event that will never reach user space.
#[inline(always)]
pub fn count_lost(kind: EventKind) {
    if let Some(counter) = LOST.get_ptr_mut(kind as u32) {
        unsafe { *counter += 1 };
    }
}

/// For programs that run without the process (a packet leaving): pid and tid 0.
#[inline(always)]
pub fn header_without_task(kind: EventKind, cgroup_id: u64) -> EventHeader {
    EventHeader {
        kind: kind as u32,
        pid: 0,
        tid: 0,
        _pad: 0,
        cgroup_id,
        boot_ns: unsafe { bpf_ktime_get_boot_ns() },
    }
}

#[inline(always)]
pub fn header(kind: EventKind, cgroup_id: u64) -> EventHeader {
    let pid_tgid = bpf_get_current_pid_tgid();
    EventHeader {
        kind: kind as u32,
        pid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        _pad: 0,
        cgroup_id,
        boot_ns: unsafe { bpf_ktime_get_boot_ns() },
    }
}
