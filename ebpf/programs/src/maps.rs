//! Maps and load-time constants shared by the programs.
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
};
use warden_common::{
    AllowEntry, Calibration, DnsOrigin, EXE_NAME_MAX, ExecToken, FileCall, FileShape,
    KernelOffsets, LOST_SLOTS, MAX_SYSCALL_NR, NetConfig, TOKEN_TAIL_MAX, UNIX_PATH_MAX,
    UnixConfig,
};

/// Session cgroup ids (the value is reserved for a per-session slot).
#[map]
pub static SESSIONS: HashMap<u64, u32> = HashMap::with_max_entries(1024, 0);

/// Events to user space. 16 MiB holds a few thousand exec records of burst.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 << 20, 0);

/// Events that could not be written, per kind, per CPU (the BPF target has no atomic add).
#[map]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOST_SLOTS, 0);

/// Approved execs by calling thread id, written by the exec gate before it lets one go on.
#[map]
pub static EXEC_TOKENS: LruHashMap<u32, ExecToken> = LruHashMap::with_max_entries(16384, 0);

/// Room to copy the end of an argument area (too big for the BPF stack).
#[map]
pub static SCRATCH: PerCpuArray<[u8; TOKEN_TAIL_MAX]> = PerCpuArray::with_max_entries(1, 0);

/// The name of the file an exec runs, for its token check.
#[map]
pub static EXE_NAME: PerCpuArray<[u8; EXE_NAME_MAX]> = PerCpuArray::with_max_entries(1, 0);

/// Which system calls are file operations, by number (filled by the supervisor).
#[map]
pub static FILE_SHAPES: Array<FileShape> = Array::with_max_entries(MAX_SYSCALL_NR, 0);

/// File system calls in progress, by thread (a plain hash: cheaper than LRU; a full map
/// counts the call as lost).
#[map]
pub static FILE_CALLS: HashMap<u32, FileCall> = HashMap::with_max_entries(16384, 0);

/// Destinations the session may reach: IPv4 addresses (network byte order) and IPv6 ones,
/// filled by the DNS proxy for allowed names (with expiry) and by the policy.
#[map]
pub static ALLOW4: HashMap<u32, AllowEntry> = HashMap::with_max_entries(65536, 0);
#[map]
pub static ALLOW6: HashMap<[u32; 4], AllowEntry> = HashMap::with_max_entries(65536, 0);
/// Allowed CIDRs (value: rule id).
#[map]
pub static CIDR4: LpmTrie<[u8; 4], u32> = LpmTrie::with_max_entries(1024, 0);
#[map]
pub static CIDR6: LpmTrie<[u8; 16], u32> = LpmTrie::with_max_entries(1024, 0);
/// Loopback ports the session may reach (value: rule id).
#[map]
pub static LOOPBACK_PORTS: HashMap<u16, u32> = HashMap::with_max_entries(1024, 0);
/// Original destinations of redirected DNS queries, by socket cookie.
#[map]
pub static DNS_ORIGINS: LruHashMap<u64, DnsOrigin> = LruHashMap::with_max_entries(16384, 0);

/// The UNIX socket programs' settings (one entry, written before they are attached; a map
/// rather than a load-time constant because those programs are loaded apart from aya).
#[map]
pub static UNIX_CONFIG: Array<UnixConfig> = Array::with_max_entries(1, 0);
/// Pathname sockets the policy allows, NUL-padded (value: rule id).
#[map]
pub static UNIX_ALLOW: HashMap<[u8; UNIX_PATH_MAX], u32> = HashMap::with_max_entries(256, 0);

/// Protected files and directories by the address of their inode (value: the path's index in
/// the supervisor's list), registered through `CALIBRATION` (see `lsm.rs`).
#[map]
pub static PROTECTED: HashMap<u64, u32> = HashMap::with_max_entries(1024, 0);
#[map]
pub static CALIBRATION: Array<Calibration> = Array::with_max_entries(1, 0);

#[unsafe(no_mangle)]
static NET_CONFIG: NetConfig = NetConfig {
    dns_proxy_port: 0,
    credential_proxy_port: 0,
    enforce: 1,
    credential_proxy_ip4: 0,
};

#[inline(always)]
pub fn net_config() -> NetConfig {
    unsafe { core::ptr::read_volatile(&raw const NET_CONFIG) }
}

/// Field offsets resolved by the supervisor from tracefs and BTF before loading.
#[unsafe(no_mangle)]
static OFFSETS: KernelOffsets = KernelOffsets::UNSET;

/// Depth of session cgroups below the cgroup v2 root (set by the supervisor).
#[unsafe(no_mangle)]
static SESSION_CGROUP_LEVEL: u32 = 0;

/// Unread bytes in `EVENTS` above which a submit wakes user space (set by the supervisor).
#[unsafe(no_mangle)]
static WAKEUP_BYTES: u64 = 0;

#[inline(always)]
pub fn wakeup_bytes() -> u64 {
    unsafe { core::ptr::read_volatile(&raw const WAKEUP_BYTES) }
}

/// Where `pt_regs` keeps system call argument `n` (0 to 5). Read in place: indexing a copy
/// on the stack with a variable is refused by the verifier, a bounded index into the
/// read-only map is not.
#[inline(always)]
pub fn regs_arg_offset(n: u8) -> u32 {
    let i = (n as usize).min(5);
    unsafe { core::ptr::read_volatile((&raw const OFFSETS.regs_args).cast::<u32>().add(i)) }
}

#[inline(always)]
pub fn offsets() -> KernelOffsets {
    // Volatile: the loader rewrites these constants, so the compiler must not fold them.
    unsafe { core::ptr::read_volatile(&raw const OFFSETS) }
}

/// Depth of session cgroups below the cgroup v2 root.
#[inline(always)]
pub fn session_level() -> u32 {
    unsafe { core::ptr::read_volatile(&raw const SESSION_CGROUP_LEVEL) }
}

/// The session cgroup the current task belongs to, if any.
///
/// Looks at the ancestor at the sessions' depth rather than the task's own cgroup, so a
/// process that creates a child cgroup under its session and moves into it stays in scope.
#[inline(always)]
pub fn current_session() -> Option<u64> {
    let level = session_level();
    let id =
        unsafe { aya_ebpf::helpers::generated::bpf_get_current_ancestor_cgroup_id(level as i32) };
    if id != 0 && unsafe { SESSIONS.get(&id) }.is_some() {
        Some(id)
    } else {
        None
    }
}
