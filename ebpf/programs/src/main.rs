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
mod files;
mod fork;
mod maps;
mod network;
mod task;

use aya_ebpf::{
    macros::{cgroup_sock_addr, raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, SockAddrContext, TracePointContext},
};
use warden_common::{NET_OP_CONNECT, NET_OP_SENDMSG};

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

#[cgroup_sock_addr(connect4)]
pub fn warden_connect4(ctx: SockAddrContext) -> i32 {
    network::on_sock_addr(&ctx, false, NET_OP_CONNECT)
}

#[cgroup_sock_addr(connect6)]
pub fn warden_connect6(ctx: SockAddrContext) -> i32 {
    network::on_sock_addr(&ctx, true, NET_OP_CONNECT)
}

#[cgroup_sock_addr(sendmsg4)]
pub fn warden_sendmsg4(ctx: SockAddrContext) -> i32 {
    network::on_sock_addr(&ctx, false, NET_OP_SENDMSG)
}

#[cgroup_sock_addr(sendmsg6)]
pub fn warden_sendmsg6(ctx: SockAddrContext) -> i32 {
    network::on_sock_addr(&ctx, true, NET_OP_SENDMSG)
}

#[cgroup_sock_addr(recvmsg4)]
pub fn warden_recvmsg4(ctx: SockAddrContext) -> i32 {
    network::on_recvmsg(&ctx, false)
}

#[cgroup_sock_addr(recvmsg6)]
pub fn warden_recvmsg6(ctx: SockAddrContext) -> i32 {
    network::on_recvmsg(&ctx, true)
}

/// An enter and an exit program for one file system call.
macro_rules! file_syscall {
    ($enter:ident, $enter_tp:literal, $exit:ident, $exit_tp:literal, $shape:expr) => {
        #[tracepoint(category = "syscalls", name = $enter_tp)]
        pub fn $enter(ctx: TracePointContext) -> u32 {
            files::on_enter(&ctx, $shape);
            0
        }

        #[tracepoint(category = "syscalls", name = $exit_tp)]
        pub fn $exit(ctx: TracePointContext) -> u32 {
            files::on_exit(&ctx, $shape.op);
            0
        }
    };
}

use files::{Flags, Shape};
use warden_common::{
    FILE_OP_LINK, FILE_OP_OPEN, FILE_OP_RENAME, FILE_OP_SYMLINK, FILE_OP_TRUNCATE, FILE_OP_UNLINK,
};

const fn shape(
    op: u32,
    dfd: Option<usize>,
    path: usize,
    path2: Option<usize>,
    flags: Flags,
) -> Shape {
    Shape {
        op,
        dfd,
        path,
        path2,
        flags,
    }
}

file_syscall!(
    wf_openat,
    "sys_enter_openat",
    wf_openat_x,
    "sys_exit_openat",
    shape(FILE_OP_OPEN, Some(0), 1, None, Flags::Arg(2))
);
file_syscall!(
    wf_openat2,
    "sys_enter_openat2",
    wf_openat2_x,
    "sys_exit_openat2",
    shape(FILE_OP_OPEN, Some(0), 1, None, Flags::Deref(2))
);
file_syscall!(
    wf_open,
    "sys_enter_open",
    wf_open_x,
    "sys_exit_open",
    shape(FILE_OP_OPEN, None, 0, None, Flags::Arg(1))
);
// creat(path, mode) is open(path, O_CREAT|O_WRONLY|O_TRUNC, mode).
file_syscall!(
    wf_creat,
    "sys_enter_creat",
    wf_creat_x,
    "sys_exit_creat",
    shape(FILE_OP_OPEN, None, 0, None, Flags::None)
);
file_syscall!(
    wf_link,
    "sys_enter_link",
    wf_link_x,
    "sys_exit_link",
    shape(FILE_OP_LINK, None, 0, Some(1), Flags::None)
);
file_syscall!(
    wf_linkat,
    "sys_enter_linkat",
    wf_linkat_x,
    "sys_exit_linkat",
    shape(FILE_OP_LINK, Some(0), 1, Some(3), Flags::Arg(4))
);
file_syscall!(
    wf_rename,
    "sys_enter_rename",
    wf_rename_x,
    "sys_exit_rename",
    shape(FILE_OP_RENAME, None, 0, Some(1), Flags::None)
);
file_syscall!(
    wf_renameat,
    "sys_enter_renameat",
    wf_renameat_x,
    "sys_exit_renameat",
    shape(FILE_OP_RENAME, Some(0), 1, Some(3), Flags::None)
);
file_syscall!(
    wf_renameat2,
    "sys_enter_renameat2",
    wf_renameat2_x,
    "sys_exit_renameat2",
    shape(FILE_OP_RENAME, Some(0), 1, Some(3), Flags::Arg(4))
);
file_syscall!(
    wf_unlinkat,
    "sys_enter_unlinkat",
    wf_unlinkat_x,
    "sys_exit_unlinkat",
    shape(FILE_OP_UNLINK, Some(0), 1, None, Flags::Arg(2))
);
file_syscall!(
    wf_symlinkat,
    "sys_enter_symlinkat",
    wf_symlinkat_x,
    "sys_exit_symlinkat",
    shape(FILE_OP_SYMLINK, Some(1), 2, Some(0), Flags::None)
);
file_syscall!(
    wf_truncate,
    "sys_enter_truncate",
    wf_truncate_x,
    "sys_exit_truncate",
    shape(FILE_OP_TRUNCATE, None, 0, None, Flags::None)
);

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
