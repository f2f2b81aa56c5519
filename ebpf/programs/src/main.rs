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
mod icmp;
mod lsm;
mod maps;
mod network;
mod task;
mod unix_sockets;

use aya_ebpf::{
    bindings::bpf_sock_addr,
    macros::{cgroup_skb, cgroup_sock_addr, fexit, lsm, raw_tracepoint, tracepoint},
    programs::{
        FExitContext, LsmContext, RawTracePointContext, SkBuffContext, SockAddrContext,
        TracePointContext,
    },
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

// Attached only when the policy allows ICMP (and so ping sockets).
#[cgroup_skb(egress)]
pub fn warden_icmp_egress(ctx: SkBuffContext) -> i32 {
    icmp::on_egress(&ctx)
}

// aya has no attach type for the UNIX socket hooks: these are compiled into sections it
// parses (and never loads), and the supervisor loads them itself (kernel/unix_programs.rs).
#[unsafe(no_mangle)]
#[unsafe(link_section = "cgroup/connect4")]
pub fn warden_connect_unix(ctx: *mut bpf_sock_addr) -> i32 {
    unix_sockets::on_unix(&SockAddrContext::new(ctx), NET_OP_CONNECT)
}

#[unsafe(no_mangle)]
#[unsafe(link_section = "cgroup/sendmsg4")]
pub fn warden_sendmsg_unix(ctx: *mut bpf_sock_addr) -> i32 {
    unix_sockets::on_unix(&SockAddrContext::new(ctx), NET_OP_SENDMSG)
}

// The fexit tier of file observation: one program per system call (a program attaches to one
// function), all alike; the supervisor attaches `warden_fexit_NAME` to the architecture's
// `sys_NAME` function (`__x64_sys_openat`) and loads those it observes.
macro_rules! file_fexit {
    ($($name:ident),* $(,)?) => {$(
        #[fexit]
        pub fn $name(ctx: FExitContext) -> u32 {
            files::on_return(&ctx);
            0
        }
    )*};
}
file_fexit!(
    warden_fexit_openat,
    warden_fexit_openat2,
    warden_fexit_linkat,
    warden_fexit_renameat2,
    warden_fexit_unlinkat,
    warden_fexit_symlinkat,
    warden_fexit_truncate,
    warden_fexit_open,
    warden_fexit_creat,
    warden_fexit_link,
    warden_fexit_rename,
    warden_fexit_renameat,
    warden_fexit_unlink,
    warden_fexit_symlink,
);

// The bpf_lsm tier's denial layer (see lsm.rs).
#[lsm(hook = "file_open")]
pub fn warden_lsm_file_open(ctx: LsmContext) -> i32 {
    lsm::file_open(&ctx)
}

#[lsm(hook = "inode_create")]
pub fn warden_lsm_inode_create(ctx: LsmContext) -> i32 {
    lsm::inode_create(&ctx)
}

#[lsm(hook = "inode_mkdir")]
pub fn warden_lsm_inode_mkdir(ctx: LsmContext) -> i32 {
    lsm::inode_mkdir(&ctx)
}

#[lsm(hook = "inode_mknod")]
pub fn warden_lsm_inode_mknod(ctx: LsmContext) -> i32 {
    lsm::inode_mknod(&ctx)
}

#[lsm(hook = "inode_symlink")]
pub fn warden_lsm_inode_symlink(ctx: LsmContext) -> i32 {
    lsm::inode_symlink(&ctx)
}

#[lsm(hook = "inode_rmdir")]
pub fn warden_lsm_inode_rmdir(ctx: LsmContext) -> i32 {
    lsm::inode_rmdir(&ctx)
}

#[lsm(hook = "inode_link")]
pub fn warden_lsm_inode_link(ctx: LsmContext) -> i32 {
    lsm::inode_link(&ctx)
}

#[lsm(hook = "inode_unlink")]
pub fn warden_lsm_inode_unlink(ctx: LsmContext) -> i32 {
    lsm::inode_unlink(&ctx)
}

#[lsm(hook = "inode_rename")]
pub fn warden_lsm_inode_rename(ctx: LsmContext) -> i32 {
    lsm::inode_rename(&ctx)
}

#[lsm(hook = "task_kill")]
pub fn warden_lsm_task_kill(ctx: LsmContext) -> i32 {
    lsm::task_kill(&ctx)
}

#[lsm(hook = "ptrace_access_check")]
pub fn warden_lsm_ptrace(ctx: LsmContext) -> i32 {
    lsm::ptrace_access_check(&ctx)
}

#[lsm(hook = "bpf")]
pub fn warden_lsm_bpf(ctx: LsmContext) -> i32 {
    lsm::bpf(&ctx)
}

// Attached only on kernels without the cgroup UNIX socket hooks.
#[lsm(hook = "socket_connect")]
pub fn warden_lsm_socket_connect(ctx: LsmContext) -> i32 {
    lsm::socket_connect(&ctx)
}

#[lsm(hook = "socket_sendmsg")]
pub fn warden_lsm_socket_sendmsg(ctx: LsmContext) -> i32 {
    lsm::socket_sendmsg(&ctx)
}

// The tracepoint tier, where the kernel refuses fexit: attached to the observed calls'
// `syscalls:sys_enter_NAME`/`sys_exit_NAME` tracepoints.
#[tracepoint]
pub fn warden_sysenter_file(ctx: TracePointContext) -> u32 {
    files::on_syscall_enter(&ctx);
    0
}

#[tracepoint]
pub fn warden_sysexit_file(ctx: TracePointContext) -> u32 {
    files::on_syscall_exit(&ctx);
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
