//! Warden's kernel programs: process-tree telemetry for the session's cgroup.
//!
//! Deliberately small. Each program answers one question ("is this task in a session?"),
//! copies what the kernel knows at that instant into the ring buffer and returns. Every
//! decision about what an event means lives in user space.
#![no_std]
#![no_main]

mod emit;
mod exec;
mod exit;
mod fork;
mod maps;
mod task;

use aya_ebpf::{
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};

#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn warden_exec(ctx: TracePointContext) -> u32 {
    exec::on_exec(&ctx);
    0
}

// A raw tracepoint because only it hands over the child's task_struct, which is how a new
// process is told apart from a new thread.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn warden_fork(ctx: RawTracePointContext) -> u32 {
    fork::on_fork(&ctx);
    0
}

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn warden_exit(ctx: TracePointContext) -> u32 {
    exit::on_exit(&ctx);
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
