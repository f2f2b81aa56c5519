//! One trivial program per program type, for `warden doctor`: loading each one is the only
//! honest way to learn whether this kernel accepts that type.
#![no_std]
#![no_main]

use aya_ebpf::{
    macros::{btf_tracepoint, cgroup_sock_addr, fentry, kprobe, lsm, raw_tracepoint, tracepoint},
    programs::{
        BtfTracePointContext, FEntryContext, LsmContext, ProbeContext, RawTracePointContext,
        SockAddrContext, TracePointContext,
    },
};

#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn probe_tp(_ctx: TracePointContext) -> u32 {
    0
}

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn probe_raw_tp(_ctx: RawTracePointContext) -> u32 {
    0
}

#[btf_tracepoint(function = "sched_process_fork")]
pub fn probe_tp_btf(_ctx: BtfTracePointContext) -> u32 {
    0
}

#[cgroup_sock_addr(connect4)]
pub fn probe_connect4(_ctx: SockAddrContext) -> i32 {
    1
}

#[kprobe]
pub fn probe_kprobe(_ctx: ProbeContext) -> u32 {
    0
}

#[lsm(hook = "file_open")]
pub fn probe_lsm(_ctx: LsmContext) -> i32 {
    0
}

#[fentry(function = "do_sys_openat2")]
pub fn probe_fentry(_ctx: FEntryContext) -> u32 {
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
