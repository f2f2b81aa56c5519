//! Reads from `task_struct` and `mm_struct` at offsets the supervisor found in BTF.
use aya_ebpf::helpers::bpf_probe_read_kernel;

#[inline(always)]
pub unsafe fn read<T>(base: *const u8, offset: u64) -> Option<T> {
    unsafe { bpf_probe_read_kernel(base.add(offset as usize) as *const T) }.ok()
}

/// `task->real_parent->tgid`: the pid a user would call the parent.
#[inline(always)]
pub unsafe fn parent_tgid(task: *const u8, off: &warden_common::KernelOffsets) -> u32 {
    let parent: *const u8 = match unsafe { read(task, off.task_real_parent) } {
        Some(p) => p,
        None => return 0,
    };
    unsafe { read::<u32>(parent, off.task_tgid) }.unwrap_or(0)
}
