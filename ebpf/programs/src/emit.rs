//! Writing to the ring buffer, and counting what could not be written.
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated::bpf_ktime_get_boot_ns},
    maps::ring_buf::RingBufEntry,
};
use warden_common::{EventHeader, EventKind};

use crate::maps::{EVENTS, LOST};

/// Reserves room for one `T`, or counts the event as lost.
#[inline(always)]
pub fn reserve<T: 'static>(kind: EventKind) -> Option<RingBufEntry<T>> {
    let entry = EVENTS.reserve::<T>(0);
    if entry.is_none() {
        if let Some(counter) = LOST.get_ptr_mut(kind as u32) {
            unsafe { *counter += 1 };
        }
    }
    entry
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
