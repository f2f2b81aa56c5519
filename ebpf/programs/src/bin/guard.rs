//! The agent guard: agent programs may only run inside a Warden session.
//!
//! Its own object, loaded once per machine (not per session) and pinned so that it outlives
//! the process that loaded it. On every exec of the machine outside the sessions' cgroups it
//! asks whether the new image is a listed agent program: the listed file itself (device and
//! inode), a listed path as typed (a script, whose interpreter is what the kernel runs), or a
//! file of the size of a listed digest's content (user space hashes it to tell a copy from a
//! false alarm). A match is killed here, before its first instruction, and reported.
#![no_std]
#![no_main]

#[path = "../task.rs"]
mod task;

use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_task, bpf_get_current_uid_gid, bpf_probe_read_kernel_str_bytes,
        bpf_probe_read_user_buf,
        generated::{bpf_get_current_ancestor_cgroup_id, bpf_ktime_get_boot_ns, bpf_send_signal},
    },
    macros::{map, tracepoint},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::TracePointContext,
};
use warden_common::{
    FILENAME_MAX, FNV_OFFSET, GUARD_ARGV_MAX, GUARD_ARGV_TRUNCATED, GUARD_ARGV_UNREADABLE,
    GUARD_BY_FILE, GUARD_BY_PATH, GUARD_BY_SIZE, GUARD_FILENAME_TRUNCATED, GUARD_MAX_ENTRIES,
    GUARD_PATH_MAX, GuardConfig, GuardEvent, GuardFileKey, KernelOffsets, fnv1a_prefix,
};

/// Where sessions live (one entry, written by user space before the program is attached).
#[map]
static GUARD_CONFIG: Array<GuardConfig> = Array::with_max_entries(1, 0);
/// Listed files by the kernel's identity.
#[map]
static GUARD_FILES: HashMap<GuardFileKey, u32> = HashMap::with_max_entries(GUARD_MAX_ENTRIES, 0);
/// Sizes of the listed digests' contents.
#[map]
static GUARD_SIZES: HashMap<u64, u32> = HashMap::with_max_entries(GUARD_MAX_ENTRIES, 0);
/// FNV-1a of the listed paths.
#[map]
static GUARD_PATHS: HashMap<u64, u32> = HashMap::with_max_entries(GUARD_MAX_ENTRIES, 0);
/// Killed execs, for user space. Small: one record per kill, and kills are rare.
#[map]
static GUARD_EVENTS: RingBuf = RingBuf::with_byte_size(256 << 10, 0);
/// Kills whose record did not fit (per CPU: the BPF target has no atomic add).
#[map]
static GUARD_LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);
/// Room for the exec path (too big for the BPF stack).
#[map]
static GUARD_PATH: PerCpuArray<[u8; GUARD_PATH_MAX]> = PerCpuArray::with_max_entries(1, 0);

/// Field offsets resolved by the supervisor from tracefs and BTF before loading.
#[unsafe(no_mangle)]
static OFFSETS: KernelOffsets = KernelOffsets::UNSET;

#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn warden_guard_exec(ctx: TracePointContext) -> u32 {
    on_exec(&ctx);
    0
}

#[inline(always)]
fn on_exec(ctx: &TracePointContext) {
    let Some(config) = GUARD_CONFIG.get(0) else {
        return;
    };
    // Inside a session: what the session allows runs (its own exec program decides).
    let parent = unsafe { bpf_get_current_ancestor_cgroup_id(config.parent_level as i32) };
    if parent != 0 && parent == config.parent_id {
        return;
    }
    let off = unsafe { core::ptr::read_volatile(&raw const OFFSETS) };
    let cur = unsafe { bpf_get_current_task() } as *const u8;
    let Some((file, size)) = (unsafe { image(cur, &off) }) else {
        return;
    };
    let by = if unsafe { GUARD_FILES.get(&file) }.is_some() {
        GUARD_BY_FILE
    } else if unsafe { GUARD_SIZES.get(&size) }.is_some() {
        GUARD_BY_SIZE
    } else if path_listed(ctx, &off, config) {
        GUARD_BY_PATH
    } else {
        return;
    };
    // Killed first: a full ring buffer loses the record, never the kill.
    const SIGKILL: u32 = 9;
    unsafe { bpf_send_signal(SIGKILL) };
    report(ctx, cur, &off, by, file, size);
}

/// The file the new image runs (`mm->exe_file`) as the kernel knows it, and its size.
#[inline(always)]
unsafe fn image(cur: *const u8, off: &KernelOffsets) -> Option<(GuardFileKey, u64)> {
    unsafe {
        let mm: *const u8 = task::read(cur, off.task_mm)?;
        let exe: *const u8 = task::read(mm, off.mm_exe_file)?;
        let inode: *const u8 = task::read(exe, off.file_inode)?;
        let sb: *const u8 = task::read(inode, off.inode_sb)?;
        let key = GuardFileKey {
            dev: task::read(sb, off.sb_dev)?,
            _pad: 0,
            ino: task::read(inode, off.inode_ino)?,
        };
        Some((key, task::read(inode, off.inode_size)?))
    }
}

/// `__data_loc char[] filename`: where the exec path is in the tracepoint's record.
#[inline(always)]
fn filename_ptr(ctx: &TracePointContext, off: &KernelOffsets) -> (*const u8, u32) {
    // Low 16 bits: the offset in the record; high 16: the length with its NUL.
    let loc: u32 = unsafe { ctx.read_at(off.exec_filename_loc as usize) }.unwrap_or(0);
    let ptr = unsafe { (ctx.as_ptr() as *const u8).add((loc & 0xffff) as usize) };
    (ptr, loc >> 16)
}

#[inline(always)]
fn path_listed(ctx: &TracePointContext, off: &KernelOffsets, config: &GuardConfig) -> bool {
    let (ptr, len_with_nul) = filename_ptr(ctx, off);
    // No listed path is that long: not read, not hashed (most execs stop here).
    if len_with_nul == 0 || !config.has_path_length(len_with_nul as usize - 1) {
        return false;
    }
    let Some(buf) = GUARD_PATH.get_ptr_mut(0) else {
        return false;
    };
    let buf = unsafe { &mut *buf };
    let n = match unsafe { bpf_probe_read_kernel_str_bytes(ptr, buf) } {
        Ok(s) => s.len(),
        Err(_) => return false,
    };
    let hash = fnv1a_prefix(FNV_OFFSET, buf, n);
    unsafe { GUARD_PATHS.get(&hash) }.is_some()
}

#[inline(always)]
fn report(
    ctx: &TracePointContext,
    cur: *const u8,
    off: &KernelOffsets,
    by: u32,
    file: GuardFileKey,
    size: u64,
) {
    let Some(mut entry) = GUARD_EVENTS.reserve::<GuardEvent>(0) else {
        if let Some(lost) = GUARD_LOST.get_ptr_mut(0) {
            unsafe { *lost += 1 };
        }
        return;
    };
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    ev.boot_ns = unsafe { bpf_ktime_get_boot_ns() };
    ev.pid = (aya_ebpf::helpers::bpf_get_current_pid_tgid() >> 32) as u32;
    ev.ppid = unsafe { task::parent_tgid(cur, off) };
    let uid_gid = bpf_get_current_uid_gid();
    ev.uid = uid_gid as u32;
    ev.gid = (uid_gid >> 32) as u32;
    ev.by = by;
    ev.flags = 0;
    ev.file = file;
    ev.size = size;
    let (ptr, len_with_nul) = filename_ptr(ctx, off);
    ev.filename_len = match unsafe { bpf_probe_read_kernel_str_bytes(ptr, &mut ev.filename) } {
        Ok(s) => s.len() as u32,
        Err(_) => 0,
    };
    if len_with_nul as usize > FILENAME_MAX {
        ev.flags |= GUARD_FILENAME_TRUNCATED;
    }
    read_argv(cur, off, ev);
    entry.submit(0);
}

/// The new image's arguments (its memory is in place: the kernel copied them there).
#[inline(always)]
fn read_argv(cur: *const u8, off: &KernelOffsets, ev: &mut GuardEvent) {
    ev.argv_len = 0;
    let area = unsafe {
        task::read::<*const u8>(cur, off.task_mm).and_then(|mm| {
            Some((
                task::read::<u64>(mm, off.mm_arg_start)?,
                task::read::<u64>(mm, off.mm_arg_end)?,
            ))
        })
    };
    let Some((start, end)) = area.filter(|(s, e)| *s != 0 && e > s) else {
        ev.flags |= GUARD_ARGV_UNREADABLE;
        return;
    };
    let mut len = (end - start) as usize;
    if len > GUARD_ARGV_MAX {
        len = GUARD_ARGV_MAX;
        ev.flags |= GUARD_ARGV_TRUNCATED;
    }
    // Masked for the verifier: it must see the bound on the register it checks.
    let len = len & (2 * GUARD_ARGV_MAX - 1);
    if len == 0 || len > GUARD_ARGV_MAX {
        return;
    }
    match unsafe { bpf_probe_read_user_buf(start as *const u8, &mut ev.argv[..len]) } {
        Ok(()) => ev.argv_len = len as u32,
        Err(_) => ev.flags |= GUARD_ARGV_UNREADABLE,
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
