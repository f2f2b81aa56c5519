//! Types shared by the kernel programs (`warden-ebpf`) and the supervisor.
//!
//! Everything here is `#[repr(C)]` plain data: the kernel writes it into the ring buffer and
//! user space reads the same bytes back. Changing a layout changes both sides at once.
#![no_std]

/// Longest executable path copied from the exec tracepoint; longer ones are marked truncated.
pub const FILENAME_MAX: usize = 1024;
/// Most argv bytes (NUL-separated) copied per exec; more are marked truncated.
pub const ARGV_MAX: usize = 4096;

/// What an event is. Also the index into the `LOST` per-CPU counters.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Exec = 1,
    Fork = 2,
    Exit = 3,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [EventKind::Exec, EventKind::Fork, EventKind::Exit];

    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Exec),
            2 => Some(Self::Fork),
            3 => Some(Self::Exit),
            _ => None,
        }
    }
}

/// Number of slots in the `LOST` counter array (indexed by `EventKind as u32`).
pub const LOST_SLOTS: u32 = 4;

/// Common prefix of every ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EventHeader {
    pub kind: u32,
    /// Thread-group id (what user space calls the pid).
    pub pid: u32,
    /// Thread id of the task that produced the event.
    pub tid: u32,
    pub _pad: u32,
    pub cgroup_id: u64,
    /// CLOCK_BOOTTIME, nanoseconds.
    pub boot_ns: u64,
}

/// `ExecEvent::flags` bits.
pub const EXEC_FILENAME_TRUNCATED: u32 = 1;
pub const EXEC_ARGV_TRUNCATED: u32 = 1 << 1;
/// The argv memory of the new image could not be read (the event still counts the exec).
pub const EXEC_ARGV_UNREADABLE: u32 = 1 << 2;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecEvent {
    pub header: EventHeader,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub flags: u32,
    /// Bytes of `filename` that are valid (without the NUL).
    pub filename_len: u32,
    /// Bytes of `argv` that are valid.
    pub argv_len: u32,
    /// Size of the whole argv area of the new image, including what did not fit.
    pub argv_total_len: u64,
    pub filename: [u8; FILENAME_MAX],
    pub argv: [u8; ARGV_MAX],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ForkEvent {
    pub header: EventHeader,
    pub parent_pid: u32,
    pub child_pid: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExitEvent {
    pub header: EventHeader,
    /// The kernel's `task_struct::exit_code`: a wait(2) status (code << 8, or the signal).
    pub exit_code: u32,
    pub ppid: u32,
}

/// Where to find things in kernel data, resolved by the supervisor at load time (tracefs
/// `format` files and BTF) because Rust eBPF has no CO-RE relocations.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelOffsets {
    /// sched_process_exec: the `__data_loc char[] filename` field.
    pub exec_filename_loc: u32,
    /// sched_process_exit: `bool group_dead`, or `OFFSET_ABSENT` on kernels without it.
    pub exit_group_dead: u32,
    pub task_pid: u64,
    pub task_tgid: u64,
    pub task_real_parent: u64,
    pub task_mm: u64,
    pub task_exit_code: u64,
    pub mm_arg_start: u64,
    pub mm_arg_end: u64,
}

/// Marks an optional tracepoint field that this kernel does not have.
pub const OFFSET_ABSENT: u32 = u32::MAX;

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `repr(C)` data with no pointers; every bit pattern is valid.
    unsafe impl aya::Pod for super::KernelOffsets {}
}
