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
    /// A connect or datagram decision of the cgroup sock_addr programs.
    Net = 4,
    /// A file system call and its result.
    File = 5,
    /// A connect or datagram to a UNIX socket address, and its decision.
    Unix = 6,
    /// A denial by a BPF LSM program (the `bpf_lsm` hook tier).
    Lsm = 7,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::Exec,
        EventKind::Fork,
        EventKind::Exit,
        EventKind::Net,
        EventKind::File,
        EventKind::Unix,
        EventKind::Lsm,
    ];

    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Exec),
            2 => Some(Self::Fork),
            3 => Some(Self::Exit),
            4 => Some(Self::Net),
            5 => Some(Self::File),
            6 => Some(Self::Unix),
            7 => Some(Self::Lsm),
            _ => None,
        }
    }
}

/// Number of slots in the `LOST` counter array (indexed by `EventKind as u32`).
pub const LOST_SLOTS: u32 = 8;

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
/// A process under the exec gate exec'd with no approval on record: killed.
pub const EXEC_TOKEN_MISSING: u32 = 1 << 3;
/// What is executed is not what the gate approved (changed after the check): killed.
pub const EXEC_TOKEN_MISMATCH: u32 = 1 << 4;

/// How many bytes of the end of the argument area an exec token covers.
pub const TOKEN_TAIL_MAX: usize = 4096;

/// What the exec gate approved for one thread's exec, checked when the new image is in place.
///
/// The tail of the argument area is hashed rather than all of it because for `#!` scripts the
/// kernel puts the interpreter (and its argument) before the original arguments.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecToken {
    /// FNV-1a of the path as passed to execve (what the exec tracepoint reports), at most
    /// `FILENAME_MAX - 1` bytes.
    pub filename_hash: u64,
    /// FNV-1a of the last `min(tail_len, TOKEN_TAIL_MAX)` bytes of the argument area.
    pub tail_hash: u64,
    /// Bytes of argv[1..], each with its NUL.
    pub tail_len: u32,
    pub _pad: u32,
    /// FNV-1a of the name (last path component) of the file the new image runs: for a
    /// script, its last interpreter. Binds what the kernel chose from the file's content.
    pub exe_name_hash: u64,
    /// That file's inode number, or 0 where user space cannot know the kernel's number
    /// (overlayfs, network file systems): then the name alone is checked.
    pub exe_ino: u64,
}

/// Bytes of the executable's name an exec token covers (NAME_MAX + 1).
pub const EXE_NAME_MAX: usize = 256;

/// FNV-1a, 64 bits: the same on both sides, cheap in the kernel. Not a defence against
/// collisions crafted offline: the arguments swapped in a race are chosen at run time, and the
/// token only has to notice that they changed.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[inline(always)]
pub fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// `fnv1a(h, &buf[..len])` (with `len` at most `N`), in the shape every supported kernel's BPF
/// verifier accepts. A loop over `&buf[..len]` compiles to a pointer walk with a countdown that
/// 6.1's verifier cannot relate to the pointer, so it refuses the program; here the loop bound
/// is the constant `N` and each index is masked through an opaque load, so every access is
/// in bounds whatever the verifier knows about `len`.
#[inline(always)]
pub fn fnv1a_prefix<const N: usize>(mut h: u64, buf: &[u8; N], len: usize) -> u64 {
    const { assert!(N.is_power_of_two()) };
    let mut i = 0;
    while i < N && i < len {
        // SAFETY: reads a local. Volatile so that the compiler cannot prove the mask redundant.
        let at = unsafe { core::ptr::read_volatile(&i) } & (N - 1);
        h ^= buf[at] as u64;
        h = h.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    h
}

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
    /// sched_process_exec: `pid_t old_pid` (the thread that called exec).
    pub exec_old_pid: u32,
    /// syscalls:sys_enter_NAME: `int __syscall_nr` and the first argument (the others follow,
    /// 8 bytes each); syscalls:sys_exit_NAME: `long ret`.
    pub sc_enter_nr: u32,
    pub sc_enter_args: u32,
    pub sc_exit_ret: u32,
    /// `struct pt_regs`: where the system call number is kept (orig_ax on x86-64).
    pub regs_syscall_nr: u32,
    /// `struct pt_regs`: the six system call argument registers.
    pub regs_args: [u32; 6],
    /// `task_struct.seccomp.mode`.
    pub task_seccomp_mode: u64,
    pub task_pid: u64,
    pub task_tgid: u64,
    pub task_real_parent: u64,
    pub task_mm: u64,
    pub task_exit_code: u64,
    pub mm_arg_start: u64,
    pub mm_arg_end: u64,
    pub mm_exe_file: u64,
    /// `file.f_path.dentry`.
    pub file_dentry: u64,
    pub file_inode: u64,
    /// `dentry.d_name.name`.
    pub dentry_name: u64,
    pub inode_ino: u64,
    /// `inode.i_sb`, `inode.i_size`, `super_block.s_dev`: the agent guard's identity of a file.
    pub inode_sb: u64,
    pub inode_size: u64,
    pub sb_dev: u64,
    // For the BPF LSM programs:
    pub dentry_inode: u64,
    pub dentry_parent: u64,
    pub inode_mode: u64,
    pub task_cgroups: u64,
    /// `css_set.dfl_cgrp`: the task's cgroup v2.
    pub css_set_dfl_cgrp: u64,
    pub cgroup_kn: u64,
    pub cgroup_level: u64,
    /// `cgroup.self`: where a cgroup's own css starts (what `parent` points to).
    pub cgroup_self: u64,
    /// `cgroup.self.parent`: the parent's `self` css, which is where the parent cgroup starts.
    pub cgroup_parent: u64,
    /// `kernfs_node.id`: the cgroup id.
    pub kn_id: u64,
    /// `msghdr.msg_name`, `msghdr.msg_namelen`.
    pub msghdr_name: u64,
    pub msghdr_namelen: u64,
}

impl KernelOffsets {
    /// Every offset 0: what the objects hold until the loader sets the real ones.
    pub const UNSET: Self = Self {
        exec_filename_loc: 0,
        exit_group_dead: 0,
        exec_old_pid: 0,
        sc_enter_nr: 0,
        sc_enter_args: 0,
        sc_exit_ret: 0,
        regs_syscall_nr: 0,
        regs_args: [0; 6],
        task_seccomp_mode: 0,
        task_pid: 0,
        task_tgid: 0,
        task_real_parent: 0,
        task_mm: 0,
        task_exit_code: 0,
        mm_arg_start: 0,
        mm_arg_end: 0,
        mm_exe_file: 0,
        file_dentry: 0,
        file_inode: 0,
        dentry_name: 0,
        inode_ino: 0,
        inode_sb: 0,
        inode_size: 0,
        sb_dev: 0,
        dentry_inode: 0,
        dentry_parent: 0,
        inode_mode: 0,
        task_cgroups: 0,
        css_set_dfl_cgrp: 0,
        cgroup_kn: 0,
        cgroup_level: 0,
        cgroup_self: 0,
        cgroup_parent: 0,
        kn_id: 0,
        msghdr_name: 0,
        msghdr_namelen: 0,
    };
}

/// `LsmEvent::hook`: which BPF LSM hook denied.
pub const LSM_FILE_OPEN: u32 = 1;
pub const LSM_TASK_KILL: u32 = 2;
pub const LSM_PTRACE: u32 = 3;
pub const LSM_BPF: u32 = 4;
pub const LSM_INODE_CREATE: u32 = 5;
pub const LSM_INODE_LINK: u32 = 6;
pub const LSM_INODE_UNLINK: u32 = 7;
pub const LSM_INODE_RENAME: u32 = 8;
pub const LSM_INODE_MKDIR: u32 = 9;
pub const LSM_INODE_MKNOD: u32 = 10;
pub const LSM_INODE_SYMLINK: u32 = 11;
pub const LSM_INODE_RMDIR: u32 = 12;

/// A denial by a BPF LSM program.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LsmEvent {
    pub header: EventHeader,
    pub hook: u32,
    /// The error returned (positive errno).
    pub errno: u32,
    /// task_kill, ptrace: the target's pid (thread-group id).
    pub target_pid: u32,
    /// task_kill: the signal; ptrace: the access mode; bpf: the command.
    pub arg: u32,
    /// file_open: the protected path matched (`PROTECTED`'s value: its index in the
    /// supervisor's list).
    pub rule: u32,
    pub _pad: u32,
}

/// Protected files are registered by the file_open program itself while the supervisor opens
/// them: the key is the address of the file's inode, which the kernel compares (device and
/// inode numbers are not unique on overlayfs without xino, and `stat` shows other numbers on
/// btrfs subvolumes). The supervisor keeps each one open for the session, so the inode stays
/// in memory and its address means that file alone. `CALIBRATION`'s one entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Calibration {
    /// The supervisor thread that opens the protected paths (0: none).
    pub tid: u32,
    /// The protected path it opens now, or `CALIBRATION_COUNT_ONLY`.
    pub rule: u32,
    /// Opens the program saw from that thread (the self-test: BPF LSM runs here).
    pub seen: u32,
    pub _pad: u32,
}

/// `Calibration::rule` of an open that only counts (the self-test), registering nothing.
pub const CALIBRATION_COUNT_ONLY: u32 = u32::MAX;

/// How many parent directories the file_open program checks (a deeper protected ancestor
/// is not found: Landlock still holds it).
pub const PROTECTED_DEPTH: u32 = 32;

/// Path bytes copied per file event (first path, second path); longer ones are marked.
pub const FILE_PATH_MAX: usize = 512;
pub const FILE_PATH2_MAX: usize = 256;

/// `FileEvent::op`, `FileResult::op`.
pub const FILE_OP_OPEN: u32 = 1;
pub const FILE_OP_LINK: u32 = 2;
pub const FILE_OP_RENAME: u32 = 3;
pub const FILE_OP_UNLINK: u32 = 4;
pub const FILE_OP_SYMLINK: u32 = 5;
pub const FILE_OP_TRUNCATE: u32 = 6;

/// `FileEvent::truncated` bits.
pub const FILE_PATH_TRUNCATED: u32 = 1;
pub const FILE_PATH2_TRUNCATED: u32 = 1 << 1;
/// The path's memory could not be read.
pub const FILE_PATH_UNREADABLE: u32 = 1 << 2;

/// `dfd` when the call took no directory descriptor (or AT_FDCWD).
pub const AT_FDCWD: i32 = -100;

/// A file system call, recorded as it returns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FileEvent {
    pub header: EventHeader,
    pub op: u32,
    /// Directory the (first) path is relative to.
    pub dfd: i32,
    /// open flags (O_*), or the call's flags argument.
    pub flags: u64,
    /// The system call's return value (negative errno on failure).
    pub ret: i64,
    pub path_len: u16,
    pub path2_len: u16,
    pub truncated: u32,
    pub path: [u8; FILE_PATH_MAX],
    /// The second path of link, rename and symlink (the new name).
    pub path2: [u8; FILE_PATH2_MAX],
}

/// How a system call number maps to a file operation (`FILE_SHAPES`); `op` 0: not one.
/// Argument indexes are `ARG_NONE` when the call has no such argument.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FileShape {
    pub op: u8,
    pub dfd: u8,
    pub path: u8,
    pub path2: u8,
    pub flags: u8,
    /// The flags are the first 8 bytes of the struct `flags` points to (openat2).
    pub flags_deref: u8,
    pub _pad: [u8; 2],
}

pub const ARG_NONE: u8 = u8::MAX;
/// `FileShape::flags` of creat(2): no flags argument, always `CREAT_FLAGS`.
pub const ARG_CREAT_FLAGS: u8 = u8::MAX - 1;
/// O_WRONLY | O_CREAT | O_TRUNC, what creat(2) opens with.
pub const CREAT_FLAGS: u64 = 0o1101;
/// System call numbers below this can be described in `FILE_SHAPES`.
pub const MAX_SYSCALL_NR: u32 = 1024;

/// A file system call's arguments, kept from its start to its return (when the strings it
/// names are sure to be in memory: the kernel has read them).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FileCall {
    pub op: u32,
    pub dfd: i32,
    /// The session cgroup, found at the start (the return need not look it up again).
    pub cgroup_id: u64,
    pub flags: u64,
    pub path: u64,
    /// 0 when the call has one path.
    pub path2: u64,
}

/// `NetEvent::op`: what the process tried.
pub const NET_OP_CONNECT: u8 = 1;
/// An unconnected datagram (sendto/sendmsg with an address).
pub const NET_OP_SENDMSG: u8 = 2;

pub const VERDICT_DENY: u8 = 0;
pub const VERDICT_ALLOW: u8 = 1;
/// A DNS query sent to the supervisor's proxy instead of where it was addressed.
pub const VERDICT_REDIRECT: u8 = 2;

/// Rule ids the kernel programs use themselves; the supervisor numbers policy rules from
/// `RULE_FIRST_POLICY` on and tells them apart when it records a decision.
pub const RULE_DEFAULT_DENY: u32 = 0;
pub const RULE_DNS_PROXY: u32 = 1;
pub const RULE_DNS_OVER_TLS: u32 = 2;
/// Addresses of a name that was approved during the session (not named by the policy).
pub const RULE_APPROVED: u32 = 3;
/// A name over a DNS budget (user space only: such names never reach a map).
pub const RULE_DNS_BUDGET: u32 = 4;
/// The session's credential proxy (delivery `inject`), allowed; another session's, denied.
pub const RULE_CREDENTIAL_PROXY: u32 = 9;
/// Every session's credential proxy listens on this port of an address in
/// 127.64.0.0/10 ([`is_credential_proxy_address`]); a session may reach only its own.
pub const CREDENTIAL_PROXY_PORT: u16 = 443;

/// Whether an IPv4 address (octets in order) is in 127.64.0.0/10, where credential proxies
/// listen.
#[inline(always)]
pub fn is_credential_proxy_address(octets: [u8; 4]) -> bool {
    octets[0] == 127 && octets[1] & 0xc0 == 64
}
pub const RULE_FIRST_POLICY: u32 = 16;

/// A network decision of the cgroup sock_addr programs.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NetEvent {
    pub header: EventHeader,
    pub uid: u32,
    pub rule: u32,
    /// AF_INET or AF_INET6 (a v4-mapped IPv6 address is reported as AF_INET).
    pub family: u16,
    /// Destination port, host byte order.
    pub port: u16,
    pub op: u8,
    pub verdict: u8,
    /// IPPROTO_TCP or IPPROTO_UDP.
    pub protocol: u8,
    pub _pad: u8,
    /// Destination address in network byte order; IPv4 uses the first 4 bytes.
    pub addr: [u8; 16],
}

/// A destination the session may reach, in `ALLOW4`/`ALLOW6`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowEntry {
    /// CLOCK_BOOTTIME after which the entry no longer allows anything; 0: no expiry.
    pub expires_boot_ns: u64,
    pub rule: u32,
    pub _pad: u32,
}

/// Where a redirected DNS query was addressed, by socket cookie, so that the answer can come
/// back from that address (recvmsg programs).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DnsOrigin {
    /// Network byte order, as in `bpf_sock_addr::user_ip6` (IPv4 uses `addr[0]`).
    pub addr: [u32; 4],
    /// Network byte order, as in `bpf_sock_addr::user_port`.
    pub port: u32,
    pub family: u32,
}

/// Network settings of a session, fixed at load time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NetConfig {
    /// The DNS proxy's port (UDP and TCP, on 127.0.0.1 and ::1), host byte order.
    pub dns_proxy_port: u16,
    /// The credential proxy's port, host byte order (0: none).
    pub credential_proxy_port: u16,
    /// 1: enforce the allowlist; 0: only observe (and still redirect DNS).
    pub enforce: u32,
    /// The credential proxy's IPv4 address (a loopback address of the session's own), as
    /// `bpf_sock_addr.user_ip4` holds it (0: none). Allowed with its port only: a wider
    /// opening would reach host services and other sessions' proxies on loopback.
    pub credential_proxy_ip4: u32,
}

/// The bytes of `sun_path` in a `sockaddr_un`.
pub const UNIX_PATH_MAX: usize = 108;

/// `UnixEvent::address`: a name in the file system, or in the abstract namespace (the bytes
/// after `sun_path`'s leading NUL).
pub const UNIX_ADDR_PATH: u8 = 1;
pub const UNIX_ADDR_ABSTRACT: u8 = 2;

/// Rule ids of the UNIX socket programs' own decisions (policy paths number from
/// `RULE_FIRST_POLICY`, as for the network).
/// Beneath the session's own socket directory.
pub const RULE_UNIX_SESSION_DIR: u32 = 5;
/// A relative path, or one spelled with `.`, `..` or `//`: refused, because the decision is
/// made on the spelling and only a canonical absolute one means what it says.
pub const RULE_UNIX_NOT_CANONICAL: u32 = 6;
/// An abstract address: Landlock's scoping decides (only the session's own are reachable).
pub const RULE_UNIX_ABSTRACT_SCOPED: u32 = 7;
/// The session's agent API socket (Warden's own).
pub const RULE_UNIX_AGENT_API: u32 = 8;

/// A UNIX socket address decision of the cgroup connect_unix/sendmsg_unix programs.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct UnixEvent {
    pub header: EventHeader,
    pub uid: u32,
    pub rule: u32,
    /// `NET_OP_CONNECT` or `NET_OP_SENDMSG`.
    pub op: u8,
    pub verdict: u8,
    /// `UNIX_ADDR_PATH` or `UNIX_ADDR_ABSTRACT`.
    pub address: u8,
    pub _pad: u8,
    /// Bytes of `path` that are the address.
    pub len: u32,
    pub path: [u8; UNIX_PATH_MAX],
}

/// What the UNIX socket programs need to know (one entry of `UNIX_CONFIG`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct UnixConfig {
    /// Where `struct bpf_sock_addr_kern` (the program's real context) keeps `uaddr` and
    /// `uaddrlen`: the kernel's own copy of the address, which the caller cannot change
    /// after the check (from BTF).
    pub uaddr_offset: u32,
    pub uaddrlen_offset: u32,
    /// 1: refuse what no rule allows; 0: only record.
    pub enforce: u32,
    /// 1 when Landlock scopes abstract sockets to the sandbox (else abstract ones are refused).
    pub abstract_scoped: u32,
    /// The session's socket directory and a slash (`prefix_len` bytes), and the mask that
    /// selects those bytes: compared in one pass whose work does not depend on the length
    /// (the verifier then checks the loop once per byte, not once per byte and length).
    pub prefix_len: u32,
    pub prefix: [u8; UNIX_PATH_MAX],
    pub mask: [u8; UNIX_PATH_MAX],
}

/// Marks an optional tracepoint field that this kernel does not have.
pub const OFFSET_ABSENT: u32 = u32::MAX;

// The agent guard (`warden-guard`, its own object): agent programs killed when they start
// outside a Warden session.

/// Exec path bytes the guard compares with the listed paths (by hash); a longer path is never
/// matched by its spelling, only by its file.
pub const GUARD_PATH_MAX: usize = 512;
/// Argument bytes a guard event carries: what was typed, for the record and the hint.
pub const GUARD_ARGV_MAX: usize = 1024;
/// Most entries in each of the guard's maps.
pub const GUARD_MAX_ENTRIES: u32 = 1024;

/// A file as the kernel knows it: its super block's device (`(major << 20) | minor`, what
/// mountinfo shows for the mount) and its inode number.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuardFileKey {
    pub dev: u32,
    pub _pad: u32,
    pub ino: u64,
}

/// `GUARD_CONFIG`'s one entry: where sessions live. A task whose ancestor at
/// `parent_level` is the cgroup `parent_id` (`<cgroup2 root>/warden`) is in a session.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardConfig {
    pub parent_id: u64,
    pub parent_level: u32,
    pub _pad: u32,
    /// Bit `n` (of `GUARD_PATH_MAX`): a listed path is `n` bytes long. An exec path of another
    /// length is not read nor hashed (its length is in the tracepoint's record).
    pub path_lengths: [u64; GUARD_PATH_MAX / 64],
}

impl GuardConfig {
    /// Whether a listed path is `len` bytes long.
    #[inline(always)]
    pub fn has_path_length(&self, len: usize) -> bool {
        // Masked so that the verifier sees the index in bounds.
        let word = self.path_lengths[(len >> 6) & (GUARD_PATH_MAX / 64 - 1)];
        len < GUARD_PATH_MAX && word & (1 << (len & 63)) != 0
    }

    pub fn add_path_length(&mut self, len: usize) {
        if len < GUARD_PATH_MAX {
            self.path_lengths[len >> 6] |= 1 << (len & 63);
        }
    }
}

/// `GuardEvent::by`: what the new image matched.
/// The listed file itself (its device and inode).
pub const GUARD_BY_FILE: u32 = 1;
/// The path it was started by is a listed path (a script: the kernel runs its interpreter).
pub const GUARD_BY_PATH: u32 = 2;
/// Its size is the size of a listed digest's content: user space hashes it.
pub const GUARD_BY_SIZE: u32 = 3;

/// `GuardEvent::flags` bits.
pub const GUARD_FILENAME_TRUNCATED: u32 = 1;
pub const GUARD_ARGV_TRUNCATED: u32 = 1 << 1;
pub const GUARD_ARGV_UNREADABLE: u32 = 1 << 2;

/// An exec outside every session that the guard killed.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GuardEvent {
    /// CLOCK_BOOTTIME, nanoseconds.
    pub boot_ns: u64,
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub by: u32,
    pub flags: u32,
    /// The file the new image runs (`mm->exe_file`: for a script, its interpreter).
    pub file: GuardFileKey,
    pub size: u64,
    /// Bytes of `filename` that are valid (without the NUL); of `argv`.
    pub filename_len: u32,
    pub argv_len: u32,
    /// The path as passed to execve.
    pub filename: [u8; FILENAME_MAX],
    pub argv: [u8; GUARD_ARGV_MAX],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_of_the_programs_are_distinct_and_below_the_policy_ones() {
        let ids = [
            RULE_DEFAULT_DENY,
            RULE_DNS_PROXY,
            RULE_DNS_OVER_TLS,
            RULE_APPROVED,
            RULE_DNS_BUDGET,
            RULE_UNIX_SESSION_DIR,
            RULE_UNIX_NOT_CANONICAL,
            RULE_UNIX_ABSTRACT_SCOPED,
            RULE_UNIX_AGENT_API,
        ];
        for (i, a) in ids.iter().enumerate() {
            assert!(*a < RULE_FIRST_POLICY);
            assert!(ids[i + 1..].iter().all(|b| b != a), "rule id {a} twice");
        }
    }

    #[test]
    fn path_lengths_of_the_guard() {
        let mut c = GuardConfig::default();
        for len in [0, 9, 63, 64, 511, 512, 4000] {
            c.add_path_length(len);
        }
        for len in [0, 9, 63, 64, 511] {
            assert!(c.has_path_length(len), "{len}");
        }
        for len in [1, 10, 65, 510, 512, 4000, 512 + 9] {
            assert!(!c.has_path_length(len), "{len}");
        }
    }

    #[test]
    fn the_kernel_shaped_hash_is_the_plain_one() {
        let mut buf = [0u8; 64];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        for len in [0, 1, 17, 63, 64, 100] {
            assert_eq!(
                fnv1a_prefix(FNV_OFFSET, &buf, len),
                fnv1a(FNV_OFFSET, &buf[..len.min(64)]),
                "len {len}"
            );
        }
        assert_ne!(fnv1a_prefix(FNV_OFFSET, &buf, 1), FNV_OFFSET);
    }
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `repr(C)` data with no pointers; every bit pattern is valid.
    unsafe impl aya::Pod for super::KernelOffsets {}
    unsafe impl aya::Pod for super::NetConfig {}
    unsafe impl aya::Pod for super::AllowEntry {}
    unsafe impl aya::Pod for super::ExecToken {}
    unsafe impl aya::Pod for super::FileShape {}
    unsafe impl aya::Pod for super::UnixConfig {}
    unsafe impl aya::Pod for super::Calibration {}
    unsafe impl aya::Pod for super::GuardFileKey {}
    unsafe impl aya::Pod for super::GuardConfig {}
}
