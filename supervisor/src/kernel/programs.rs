//! Loading Warden's kernel programs for one supervisor and managing their maps.
use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, MapData, MapError, PerCpuArray, RingBuf},
    programs::{
        CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSockAddr, ProgramError,
        RawTracePoint, TracePoint,
        links::{FdLink, PinnedLink},
    },
};
use std::{
    os::fd::{AsFd, AsRawFd},
    path::{Path, PathBuf},
};
use warden_common::{
    EventKind, KernelOffsets, NetConfig, OFFSET_ABSENT, UNIX_PATH_MAX, UnixConfig,
};

use crate::network::allowlist::NetworkMaps;

use super::{
    btf::{self, Btf, BtfError},
    file_hooks,
    hook_tier::{HookTier, TierChoice, TierReport},
    lsm,
    tracefs::{self, Format, TracefsError},
    unix_programs::{UnixProgramError, UnixPrograms},
    verifier::Refusal,
};

/// The compiled kernel programs, built by build.rs.
pub(super) static PROGRAMS_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/warden-ebpf"));
/// One trivial program per type, for `warden doctor`.
pub static PROBES_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/warden-probes"));

/// Where `struct pt_regs` keeps the system call number and its six arguments.
fn syscall_registers(btf: &Btf) -> Result<(u32, [u32; 6]), KernelError> {
    let off = |m: &str| btf.member_offset("pt_regs", m).map(|o| o as u32);
    #[cfg(target_arch = "x86_64")]
    let (nr, args) = (off("orig_ax")?, ["di", "si", "dx", "r10", "r8", "r9"]);
    #[cfg(target_arch = "aarch64")]
    let (nr, args) = (off("syscallno")?, ["regs"; 6]);
    let mut out = [0u32; 6];
    for (i, name) in args.iter().enumerate() {
        out[i] = off(name)?;
        // arm64 keeps the arguments in regs[0..6].
        if cfg!(target_arch = "aarch64") {
            out[i] += 8 * i as u32;
        }
    }
    Ok((nr, out))
}

/// The cgroup sock_addr programs (network allowlist and DNS redirection), attached to the
/// session cgroup and pinned under bpffs.
const NETWORK_PROGRAMS: [&str; 6] = [
    "warden_connect4",
    "warden_connect6",
    "warden_sendmsg4",
    "warden_sendmsg6",
    "warden_recvmsg4",
    "warden_recvmsg6",
];

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Btf(#[from] BtfError),
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    #[error("loading the eBPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("{0}")]
    Refused(Refusal),
    #[error("the kernel refuses program {name} before verifying it: {errno}")]
    TypeRefused {
        name: &'static str,
        errno: std::io::Error,
    },
    #[error("program {name}: {source}")]
    Program {
        name: &'static str,
        source: ProgramError,
    },
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        source: MapError,
    },
    #[error("map {0} missing from the eBPF object")]
    MissingMap(&'static str),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("link of {name}: {source}")]
    Link {
        name: &'static str,
        source: aya::programs::links::LinkError,
    },
    #[error("pinning {name}: {source}")]
    Pin {
        name: &'static str,
        source: aya::pin::PinError,
    },
    #[error("UNIX socket programs: {0}")]
    Unix(#[from] UnixProgramError),
    #[error("UNIX socket path {0} is longer than a socket address holds")]
    UnixPathTooLong(std::path::PathBuf),
    #[error("no hook tier loads on this kernel: {0}")]
    NoTier(String),
    #[error(
        "another Warden guards agent programs on this machine already (it holds the lock on {})",
        .0.display()
    )]
    GuardHeld(std::path::PathBuf),
    #[error("hook tier {tier} asked for, but this kernel does not give it: {why}")]
    TierUnavailable { tier: HookTier, why: String },
    /// The kernel allows a bounded number of programs on one hook, for the whole machine
    /// (`BPF_TRACE_MAX_PROGS`, 64 per tracepoint; `BPF_MAX_TRAMP_LINKS`, 38 per kernel
    /// function on x86-64), and they are taken: by other sessions, the agent guard, other tools.
    #[error(
        "the kernel allows no more programs on the hook of {name} (at most 64 per tracepoint \
         and 38 per kernel function, for the whole machine)"
    )]
    HookFull { name: &'static str },
}

impl KernelError {
    /// Whether waiting for another session to end may cure this error.
    pub fn is_hook_full(&self) -> bool {
        matches!(self, Self::HookFull { .. })
    }
}

/// Why a hook tier did not attach: a tier the kernel does not give is fallen back from; a
/// tier that is full is waited for (falling back would weaken the session for a while).
pub(super) enum TierFailure {
    Unavailable(String),
    Full(KernelError),
}

impl From<KernelError> for TierFailure {
    fn from(e: KernelError) -> Self {
        if e.is_hook_full() {
            Self::Full(e)
        } else {
            Self::Unavailable(e.to_string())
        }
    }
}

impl From<String> for TierFailure {
    fn from(why: String) -> Self {
        Self::Unavailable(why)
    }
}

impl From<&str> for TierFailure {
    fn from(why: &str) -> Self {
        Self::Unavailable(why.to_owned())
    }
}

/// Attaches file observation (and on the bpf_lsm tier the LSM programs) at the best tier of
/// `choice` that the kernel gives.
fn attach_tier(
    ebpf: &mut Ebpf,
    choice: TierChoice,
    protected: &[PathBuf],
    log_dir: &Path,
    btf: &Result<aya::Btf, String>,
) -> Result<(Vec<Attached>, TierReport), KernelError> {
    let mut unavailable = Vec::new();
    let candidates = choice.candidates();
    // Borrowed by each attempt: a copy of the kernel's BTF costs milliseconds.
    let btf = || {
        btf.as_ref()
            .map_err(|why| TierFailure::Unavailable(why.clone()))
    };
    for tier in candidates.iter().copied() {
        let attempt = match tier {
            HookTier::BpfLsm => btf().and_then(|btf| {
                let mut links = lsm::attach(ebpf, btf, protected, log_dir)?;
                links.extend(file_hooks::attach_fexit(ebpf, btf, log_dir)?);
                Ok(links)
            }),
            HookTier::Fentry => {
                btf().and_then(|btf| Ok(file_hooks::attach_fexit(ebpf, btf, log_dir)?))
            }
            HookTier::Tracepoint => Ok(file_hooks::attach_tracepoints(ebpf, log_dir)?),
        };
        match attempt {
            Ok(links) => return Ok((links, TierReport { tier, unavailable })),
            Err(TierFailure::Full(e)) => return Err(e),
            Err(TierFailure::Unavailable(why)) if candidates.len() == 1 => {
                return Err(KernelError::TierUnavailable { tier, why });
            }
            Err(TierFailure::Unavailable(why)) => unavailable.push((tier, why)),
        }
    }
    Err(KernelError::NoTier(
        TierReport {
            tier: HookTier::Tracepoint,
            unavailable,
        }
        .unavailable_lines()
        .join("; "),
    ))
}

/// What the kernel's BTF tells the programs, read once.
struct KernelTypes {
    /// The field offsets the programs are loaded with.
    offsets: KernelOffsets,
    /// Where the cgroup UNIX programs find a socket address (`uaddr`, `uaddrlen`): an error
    /// on kernels without those hooks.
    unix_addr: Result<(u32, u32), BtfError>,
    /// aya's parse, for the hook tiers' fexit and LSM programs.
    tiers: Result<aya::Btf, String>,
}

impl KernelTypes {
    fn read() -> Result<Self, KernelError> {
        let data = btf::read(btf::VMLINUX)?;
        let ours = Btf::parse(&data)?;
        Ok(KernelTypes {
            offsets: resolve_offsets(&ours)?,
            unix_addr: unix_addr_offsets(&ours),
            tiers: aya::Btf::parse(&data, aya::Endianness::default())
                .map_err(|e| format!("reading BTF: {e}")),
        })
    }
}

/// Field offsets of this kernel, read afresh (the agent guard, loaded once per machine).
pub fn kernel_offsets() -> Result<KernelOffsets, KernelError> {
    resolve_offsets(&Btf::from_file(btf::VMLINUX)?)
}

/// Field offsets of this kernel, from tracefs formats and its BTF.
fn resolve_offsets(btf: &Btf) -> Result<KernelOffsets, KernelError> {
    let root = tracefs::ensure_mounted()?;
    let exec = Format::read(&root, "sched", "sched_process_exec")?;
    let exit = Format::read(&root, "sched", "sched_process_exit")?;
    // Without CONFIG_FTRACE_SYSCALLS the tracepoint tier cannot attach (and says so).
    let sc_enter = Format::read(&root, "syscalls", "sys_enter_openat").ok();
    let sc_exit = Format::read(&root, "syscalls", "sys_exit_openat").ok();
    let sc = |f: &Option<Format>, field| {
        f.as_ref()
            .and_then(|f| f.offset(field))
            .unwrap_or(OFFSET_ABSENT)
    };
    let regs = syscall_registers(btf)?;
    let task = |m| btf.member_offset("task_struct", m);
    let mm = |m| btf.member_offset("mm_struct", m);
    Ok(KernelOffsets {
        exec_filename_loc: exec.require("filename")?,
        exit_group_dead: exit.offset("group_dead").unwrap_or(OFFSET_ABSENT),
        exec_old_pid: exec.require("old_pid")?,
        sc_enter_nr: sc(&sc_enter, "__syscall_nr"),
        // openat's first argument: every sys_enter record has its arguments there.
        sc_enter_args: sc(&sc_enter, "dfd"),
        sc_exit_ret: sc(&sc_exit, "ret"),
        regs_syscall_nr: regs.0,
        regs_args: regs.1,
        task_seccomp_mode: task("seccomp")? + btf.member_offset("seccomp", "mode")?,
        task_pid: task("pid")?,
        task_tgid: task("tgid")?,
        task_real_parent: task("real_parent")?,
        task_mm: task("mm")?,
        task_exit_code: task("exit_code")?,
        mm_arg_start: mm("arg_start")?,
        mm_arg_end: mm("arg_end")?,
        mm_exe_file: mm("exe_file")?,
        file_dentry: btf.member_offset("file", "f_path")? + btf.member_offset("path", "dentry")?,
        file_inode: btf.member_offset("file", "f_inode")?,
        dentry_name: btf.member_offset("dentry", "d_name")? + btf.member_offset("qstr", "name")?,
        inode_ino: btf.member_offset("inode", "i_ino")?,
        inode_sb: btf.member_offset("inode", "i_sb")?,
        inode_size: btf.member_offset("inode", "i_size")?,
        sb_dev: btf.member_offset("super_block", "s_dev")?,
        dentry_inode: btf.member_offset("dentry", "d_inode")?,
        dentry_parent: btf.member_offset("dentry", "d_parent")?,
        inode_mode: btf.member_offset("inode", "i_mode")?,
        task_cgroups: task("cgroups")?,
        css_set_dfl_cgrp: btf.member_offset("css_set", "dfl_cgrp")?,
        cgroup_kn: btf.member_offset("cgroup", "kn")?,
        cgroup_level: btf.member_offset("cgroup", "level")?,
        cgroup_self: btf.member_offset("cgroup", "self")?,
        cgroup_parent: btf.member_offset("cgroup", "self")?
            + btf.member_offset("cgroup_subsys_state", "parent")?,
        kn_id: btf.member_offset("kernfs_node", "id")?,
        msghdr_name: btf.member_offset("msghdr", "msg_name")?,
        msghdr_namelen: btf.member_offset("msghdr", "msg_namelen")?,
    })
}

/// A thread's result; its panic goes on in the caller.
fn join<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn unix_addr_offsets(btf: &Btf) -> Result<(u32, u32), BtfError> {
    let member = |m| btf.member_offset("bpf_sock_addr_kern", m).map(|o| o as u32);
    Ok((member("uaddr")?, member("uaddrlen")?))
}

pub(super) fn prog_err(name: &'static str) -> impl FnOnce(ProgramError) -> KernelError {
    move |source| {
        if is_full(&source) {
            KernelError::HookFull { name }
        } else {
            KernelError::Program { name, source }
        }
    }
}

/// E2BIG from an attach: the hook holds as many programs as the kernel allows.
pub fn is_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            == Some(libc::E2BIG)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// For `load()`: a verifier refusal is reported by its cause, with the whole log in `log_dir`.
pub(super) fn load_err(
    name: &'static str,
    log_dir: &Path,
) -> impl FnOnce(ProgramError) -> KernelError {
    move |source| match source {
        // Refused before the verifier ran (this program type is not allowed here): there is
        // no log worth keeping.
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } if verifier_log.to_string().trim().is_empty() => KernelError::TypeRefused {
            name,
            errno: io_error,
        },
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => KernelError::Refused(Refusal::new(
            name,
            io_error,
            &verifier_log.to_string(),
            log_dir,
        )),
        source => KernelError::Program { name, source },
    }
}

pub(super) fn program<'a, T>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut T, KernelError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(KernelError::Program {
            name,
            source: ProgramError::UnexpectedProgramType,
        })?
        .try_into()
        .map_err(prog_err(name))
}

fn attach_tracepoint(
    ebpf: &mut Ebpf,
    name: &'static str,
    event: &str,
    log_dir: &Path,
) -> Result<Attached, KernelError> {
    let tp: &mut TracePoint = program(ebpf, name)?;
    tp.load().map_err(load_err(name, log_dir))?;
    let id = tp.attach("sched", event).map_err(prog_err(name))?;
    Ok(Box::new(tp.take_link(id).map_err(prog_err(name))?))
}

/// An attachment, held only to be dropped: dropping it detaches the program (or, for the
/// protected files the LSM layer keeps open, closes them).
pub(super) type Attached = Box<dyn Send>;

/// Ring-buffer size when none is given: a few thousand exec records of burst.
pub const DEFAULT_RING_BYTES: u32 = 16 << 20;

pub struct LoadOptions {
    /// Depth of session cgroups below the cgroup v2 root.
    pub session_level: u32,
    pub net: NetConfig,
    /// Ring-buffer size (a power of two, at least a page); `None`: `DEFAULT_RING_BYTES`.
    pub ring_buffer_bytes: Option<u32>,
    /// Where the whole log of a program the verifier refuses is saved.
    pub verifier_log_dir: std::path::PathBuf,
    /// The policy allows ICMP echo: load the egress program that decides its destinations.
    pub icmp: bool,
    /// Which hook tiers may be tried.
    pub hook_tier: TierChoice,
    /// Files and directories no session process may open (the bpf_lsm tier; their index is
    /// what its records name).
    pub protected: Vec<PathBuf>,
}

/// The cgroup skb program that keeps ICMP echo to allowed addresses.
const ICMP_PROGRAM: &str = "warden_icmp_egress";

/// Approved execs by thread id (see `warden_common::ExecToken`).
pub type ExecTokens = HashMap<MapData, u32, warden_common::ExecToken>;

/// The loaded and attached programs. Dropping this detaches them.
pub struct KernelPrograms {
    ebpf: Ebpf,
    /// Held, never read: the programs stay attached until these are dropped (`release`).
    _links: Vec<Attached>,
    /// Network links pinned in bpffs, and where.
    pinned: Vec<PinnedLink>,
    pin_dir: Option<std::path::PathBuf>,
    sessions: HashMap<MapData, u64, u32>,
    logger: Option<KernelLogger>,
    /// None on kernels without the UNIX socket hooks (before 6.7).
    unix: Option<UnixPrograms>,
    /// Where the cgroup UNIX programs find the socket address (`uaddr`, `uaddrlen` of
    /// `bpf_sock_addr_kern`), when they are loaded.
    unix_addr: (u32, u32),
    /// The ICMP egress program is loaded (and attached with the network programs).
    icmp: bool,
    tier: TierReport,
}

/// What the UNIX socket programs of a session enforce.
pub struct UnixSettings<'a> {
    /// The session's own socket directory (canonical, absolute).
    pub dir: &'a Path,
    /// Exact paths outside the session, with their rule ids.
    pub allowed: &'a [(std::path::PathBuf, u32)],
    pub enforce: bool,
    /// Landlock scopes abstract sockets to the sandbox (else they are refused).
    pub abstract_scoped: bool,
}

/// A path as the UNIX programs' keys hold it: its bytes, NUL-padded.
fn unix_key(path: &Path) -> Result<[u8; UNIX_PATH_MAX], KernelError> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // The kernel needs room for the terminating NUL.
    if bytes.len() >= UNIX_PATH_MAX {
        return Err(KernelError::UnixPathTooLong(path.to_path_buf()));
    }
    let mut key = [0u8; UNIX_PATH_MAX];
    key[..bytes.len()].copy_from_slice(bytes);
    Ok(key)
}

/// Kernel-side diagnostics (aya-log), forwarded to Warden's own log.
pub type KernelLogger = aya_log::EbpfLogger<&'static dyn log::Log>;

/// What the programs produce: the event ring buffer and the lost-event counters.
pub struct EventSource {
    pub ring: RingBuf<MapData>,
    pub lost: LostCounter,
}

pub struct LostCounter(PerCpuArray<MapData, u64>);

impl KernelPrograms {
    /// Loads and attaches the programs; returns them with the ring buffer of their events.
    pub fn load(opts: LoadOptions) -> Result<(Self, EventSource), KernelError> {
        // aya's loader reads and parses the kernel's BTF on its own (it cannot be handed a
        // parse); ours, for the offsets and the hook tiers, is made meanwhile.
        let (types, mut loader) = std::thread::scope(|s| {
            let types = s.spawn(KernelTypes::read);
            let loader = EbpfLoader::new();
            (join(types), loader)
        });
        let types = types?;
        let offsets = types.offsets;
        let log_dir = opts.verifier_log_dir.as_path();
        let ring_bytes = opts.ring_buffer_bytes.unwrap_or(DEFAULT_RING_BYTES);
        // Wake the supervisor early enough that a burst never outruns its timer.
        let wakeup_bytes = u64::from(ring_bytes / 8);
        loader
            .override_global("OFFSETS", &offsets, true)
            .override_global("SESSION_CGROUP_LEVEL", &opts.session_level, true)
            .override_global("WAKEUP_BYTES", &wakeup_bytes, true)
            .override_global("NET_CONFIG", &opts.net, true)
            .map_max_entries("EVENTS", ring_bytes);
        let mut ebpf = loader.load(PROGRAMS_OBJECT)?;
        // Before any map is taken from `ebpf`: they are relocated against all of them.
        let unix = UnixPrograms::relocate(PROGRAMS_OBJECT, &ebpf)?;
        let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
            Ok(logger) => Some(logger),
            Err(e) => {
                tracing::warn!("kernel-side diagnostics unavailable: {e}");
                None
            }
        };

        // The verifier takes longest over the exec program (100 ms here): the UNIX programs
        // are verified meanwhile.
        let (exec, unix) = std::thread::scope(|s| {
            let unix = s.spawn(|| unix.load(log_dir));
            let exec = attach_tracepoint(&mut ebpf, "warden_exec", "sched_process_exec", log_dir);
            (exec, join(unix))
        });
        let mut links = vec![exec?];
        let unix = unix?;
        let unix_addr = match unix {
            Some(_) => types.unix_addr?,
            None => (0, 0),
        };
        let fork: &mut RawTracePoint = program(&mut ebpf, "warden_fork")?;
        fork.load().map_err(load_err("warden_fork", log_dir))?;
        let id = fork
            .attach("sched_process_fork")
            .map_err(prog_err("warden_fork"))?;
        links.push(Box::new(
            fork.take_link(id).map_err(prog_err("warden_fork"))?,
        ));
        links.push(attach_tracepoint(
            &mut ebpf,
            "warden_exit",
            "sched_process_exit",
            log_dir,
        )?);
        file_hooks::describe_calls(&mut ebpf)?;
        let (file_links, tier) = attach_tier(
            &mut ebpf,
            opts.hook_tier,
            &opts.protected,
            log_dir,
            &types.tiers,
        )?;
        links.extend(file_links);

        for name in NETWORK_PROGRAMS {
            let p: &mut CgroupSockAddr = program(&mut ebpf, name)?;
            p.load().map_err(load_err(name, log_dir))?;
        }
        if opts.icmp {
            let p: &mut CgroupSkb = program(&mut ebpf, ICMP_PROGRAM)?;
            p.load().map_err(load_err(ICMP_PROGRAM, log_dir))?;
        }

        let map_err = |name| move |source| KernelError::Map { name, source };
        let take = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name).ok_or(KernelError::MissingMap(name))
        };
        let ring = RingBuf::try_from(take(&mut ebpf, "EVENTS")?).map_err(map_err("EVENTS"))?;
        let sessions =
            HashMap::try_from(take(&mut ebpf, "SESSIONS")?).map_err(map_err("SESSIONS"))?;
        let lost = PerCpuArray::try_from(take(&mut ebpf, "LOST")?).map_err(map_err("LOST"))?;
        Ok((
            Self {
                ebpf,
                _links: links,
                pinned: Vec::new(),
                pin_dir: None,
                sessions,
                logger,
                unix,
                unix_addr,
                icmp: opts.icmp,
                tier,
            },
            EventSource {
                ring,
                lost: LostCounter(lost),
            },
        ))
    }

    /// The allow maps, for the network allowlist (once).
    pub fn take_network_maps(&mut self) -> Result<NetworkMaps, KernelError> {
        fn take<T: TryFrom<aya::maps::Map, Error = MapError>>(
            ebpf: &mut Ebpf,
            name: &'static str,
        ) -> Result<T, KernelError> {
            let map = ebpf.take_map(name).ok_or(KernelError::MissingMap(name))?;
            T::try_from(map).map_err(|source| KernelError::Map { name, source })
        }
        let e = &mut self.ebpf;
        Ok(NetworkMaps {
            allow4: take(e, "ALLOW4")?,
            allow6: take(e, "ALLOW6")?,
            cidr4: take(e, "CIDR4")?,
            cidr6: take(e, "CIDR6")?,
            loopback_ports: take(e, "LOOPBACK_PORTS")?,
        })
    }

    /// The exec-token map, for the exec gate (once).
    pub fn take_exec_tokens(&mut self) -> Result<ExecTokens, KernelError> {
        let map = self
            .ebpf
            .take_map("EXEC_TOKENS")
            .ok_or(KernelError::MissingMap("EXEC_TOKENS"))?;
        HashMap::try_from(map).map_err(|source| KernelError::Map {
            name: "EXEC_TOKENS",
            source,
        })
    }

    /// Attaches the network programs to the session cgroup and pins the links in `pin_dir`, so
    /// that they keep enforcing if this supervisor dies (`recovery` cleans up after it).
    pub fn attach_network(&mut self, cgroup: &Path, pin_dir: &Path) -> Result<(), KernelError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| KernelError::Io { path, source }
        };
        std::fs::create_dir_all(pin_dir).map_err(io_err(pin_dir))?;
        self.pin_dir = Some(pin_dir.to_path_buf());
        let cgroup_fd = std::fs::File::open(cgroup).map_err(io_err(cgroup))?;
        for name in NETWORK_PROGRAMS {
            let p: &mut CgroupSockAddr = program(&mut self.ebpf, name)?;
            let id = p
                .attach(&cgroup_fd, CgroupAttachMode::Single)
                .map_err(prog_err(name))?;
            let link = p.take_link(id).map_err(prog_err(name))?;
            self.pin(link, name, pin_dir)?;
        }
        if self.icmp {
            let name = ICMP_PROGRAM;
            let p: &mut CgroupSkb = program(&mut self.ebpf, name)?;
            let id = p
                .attach(
                    &cgroup_fd,
                    CgroupSkbAttachType::Egress,
                    CgroupAttachMode::Single,
                )
                .map_err(prog_err(name))?;
            let link = p.take_link(id).map_err(prog_err(name))?;
            self.pin(link, name, pin_dir)?;
        }
        Ok(())
    }

    fn pin<L: TryInto<FdLink, Error = aya::programs::links::LinkError>>(
        &mut self,
        link: L,
        name: &'static str,
        pin_dir: &Path,
    ) -> Result<(), KernelError> {
        let link: FdLink = link
            .try_into()
            .map_err(|source| KernelError::Link { name, source })?;
        let pinned = link
            .pin(pin_dir.join(name))
            .map_err(|source| KernelError::Pin { name, source })?;
        self.pinned.push(pinned);
        Ok(())
    }

    /// The hook tier the programs run at, and why better ones were passed over.
    pub fn tier(&self) -> &TierReport {
        &self.tier
    }

    /// Whether UNIX socket addresses are decided in the kernel: by the cgroup hooks (6.7+), or
    /// on the bpf_lsm tier by the LSM socket hooks.
    pub fn unix_enforced(&self) -> bool {
        self.unix.is_some() || lsm::decides_unix_sockets(self.tier.tier)
    }

    /// Configures the UNIX socket programs and attaches the cgroup ones to the session cgroup,
    /// pinned beside the network programs (the LSM ones are attached already). Without either,
    /// does nothing.
    pub fn attach_unix(
        &mut self,
        cgroup: &Path,
        pin_dir: &Path,
        settings: &UnixSettings<'_>,
    ) -> Result<(), KernelError> {
        if !self.unix_enforced() {
            return Ok(());
        }
        // Where the cgroup programs find the address (the LSM programs are handed it).
        let (uaddr_offset, uaddrlen_offset) = self.unix_addr;
        let prefix = settings.dir.join("");
        let prefix_len = prefix.as_os_str().len();
        let mut mask = [0u8; UNIX_PATH_MAX];
        mask[..prefix_len.min(UNIX_PATH_MAX)].fill(0xff);
        let config = UnixConfig {
            uaddr_offset,
            uaddrlen_offset,
            enforce: u32::from(settings.enforce),
            abstract_scoped: u32::from(settings.abstract_scoped),
            prefix_len: prefix_len as u32,
            prefix: unix_key(&prefix)?,
            mask,
        };
        let map_err = |name| move |source| KernelError::Map { name, source };
        let mut cfg: aya::maps::Array<_, UnixConfig> = aya::maps::Array::try_from(
            self.ebpf
                .map_mut("UNIX_CONFIG")
                .ok_or(KernelError::MissingMap("UNIX_CONFIG"))?,
        )
        .map_err(map_err("UNIX_CONFIG"))?;
        cfg.set(0, config, 0).map_err(map_err("UNIX_CONFIG"))?;
        let mut allow: HashMap<_, [u8; UNIX_PATH_MAX], u32> = HashMap::try_from(
            self.ebpf
                .map_mut("UNIX_ALLOW")
                .ok_or(KernelError::MissingMap("UNIX_ALLOW"))?,
        )
        .map_err(map_err("UNIX_ALLOW"))?;
        for (path, rule) in settings.allowed {
            allow
                .insert(unix_key(path)?, rule, 0)
                .map_err(map_err("UNIX_ALLOW"))?;
        }
        let io_err = |source| KernelError::Io {
            path: cgroup.to_path_buf(),
            source,
        };
        if let Some(unix) = self.unix.as_mut() {
            let cgroup_fd = std::fs::File::open(cgroup).map_err(io_err)?;
            unix.attach(cgroup_fd.as_fd(), pin_dir)?;
        }
        Ok(())
    }

    /// Removes the pins and detaches the network programs: the end of a session, and also
    /// what dropping does (only a killed supervisor leaves its pins, on purpose).
    pub fn unpin_network(&mut self) {
        if let Some(unix) = self.unix.as_mut() {
            unix.unpin();
        }
        for link in self.pinned.drain(..) {
            if let Err(e) = link.unpin() {
                tracing::error!("unpinning a network program: {e}");
            }
        }
        if let Some(dir) = self.pin_dir.take()
            && let Err(e) = std::fs::remove_dir(&dir)
        {
            tracing::error!("removing {}: {e}", dir.display());
        }
    }

    /// Lets the programs go without making the session wait for the kernel to detach them.
    ///
    /// Detaching waits for RCU grace periods: one per syscall tracepoint (28 on the
    /// tracepoint tier, about 1.3 s here, serialized by the kernel) and an RCU-tasks grace
    /// period per fexit or LSM trampoline. A child process takes the last references and
    /// exits; the kernel detaches them while it closes its descriptors, after `warden run`
    /// has returned. Where fork fails they are dropped here, which waits.
    pub fn release(self) {
        // The child holds its references until ours are gone (it reads to the end of a pipe
        // whose writing end we close last): if it exited first, our drop would be the last
        // and wait (one session in three did, here).
        let (ours_gone, gone_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok(pipe) => pipe,
            Err(e) => {
                tracing::debug!("detaching in the foreground (pipe: {e})");
                return drop(self);
            }
        };
        // SAFETY: the child of this multi-threaded process only closes descriptors, reads
        // and exits (async-signal-safe); it closes the standard ones first so that nothing
        // reading Warden's output waits for it.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => unsafe {
                for fd in 0..3 {
                    libc::close(fd);
                }
                libc::close(gone_w.as_raw_fd());
                let mut byte = 0u8;
                while libc::read(ours_gone.as_raw_fd(), (&raw mut byte).cast(), 1) < 0
                    && nix::errno::Errno::last_raw() == libc::EINTR
                {}
                libc::_exit(0)
            },
            Ok(nix::unistd::ForkResult::Parent { .. }) => {
                drop(ours_gone);
                drop(self);
                drop(gone_w);
            }
            Err(e) => {
                tracing::debug!("detaching in the foreground (fork: {e})");
                drop(self)
            }
        }
    }

    /// The reader of kernel-side diagnostics; someone must drain it (see `forward_kernel_log`).
    pub fn take_logger(&mut self) -> Option<KernelLogger> {
        self.logger.take()
    }

    /// Kernel ids of the loaded programs (recorded so that an auditor can tie events to them).
    pub fn program_ids(&self) -> Vec<u32> {
        let unix = self.unix.iter().flat_map(UnixPrograms::ids);
        self.ebpf
            .programs()
            .filter_map(|(_, p)| p.info().ok().map(|i| i.id()))
            .chain(unix)
            .collect()
    }

    /// Puts a cgroup (and so every process in it, now and later) in scope.
    pub fn add_session(&mut self, cgroup_id: u64) -> Result<(), KernelError> {
        self.sessions
            .insert(cgroup_id, 0, 0)
            .map_err(|source| KernelError::Map {
                name: "SESSIONS",
                source,
            })
    }
}

impl LostCounter {
    /// Events the kernel could not write, per kind, summed over CPUs since load.
    pub fn counts(&self) -> Result<LostCounts, KernelError> {
        let mut counts = LostCounts::default();
        for kind in EventKind::ALL {
            let per_cpu = self
                .0
                .get(&(kind as u32), 0)
                .map_err(|source| KernelError::Map {
                    name: "LOST",
                    source,
                })?;
            *counts.get_mut(kind) = per_cpu.iter().sum();
        }
        Ok(counts)
    }
}

/// Lost-event counts by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LostCounts {
    pub exec: u64,
    pub fork: u64,
    pub exit: u64,
    pub network: u64,
    pub file: u64,
    pub unix: u64,
    pub lsm: u64,
}

impl LostCounts {
    pub fn get_mut(&mut self, kind: EventKind) -> &mut u64 {
        match kind {
            EventKind::Exec => &mut self.exec,
            EventKind::Fork => &mut self.fork,
            EventKind::Exit => &mut self.exit,
            EventKind::Net => &mut self.network,
            EventKind::File => &mut self.file,
            EventKind::Unix => &mut self.unix,
            EventKind::Lsm => &mut self.lsm,
        }
    }

    pub fn total(&self) -> u64 {
        self.exec + self.fork + self.exit + self.network + self.file + self.unix + self.lsm
    }

    /// What was lost since `earlier`.
    pub fn since(&self, earlier: &LostCounts) -> LostCounts {
        LostCounts {
            exec: self.exec - earlier.exec,
            fork: self.fork - earlier.fork,
            exit: self.exit - earlier.exit,
            network: self.network - earlier.network,
            file: self.file - earlier.file,
            unix: self.unix - earlier.unix,
            lsm: self.lsm - earlier.lsm,
        }
    }
}

impl Drop for KernelPrograms {
    fn drop(&mut self) {
        self.unpin_network();
    }
}

/// Forwards kernel-side diagnostics to Warden's log until the task is dropped.
pub async fn forward_kernel_log(logger: KernelLogger) -> std::io::Result<()> {
    // SAFETY: the logger owns its ring-buffer fd for as long as the AsyncFd owns the logger.
    let mut fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE)
    }
    .map_err(|e| e.into_parts().1)?;
    loop {
        let mut guard = fd.readable_mut().await?;
        guard.get_inner_mut().flush();
        guard.clear_ready();
    }
}
