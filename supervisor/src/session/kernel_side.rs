//! What a session holds in the kernel: its cgroup, its programs and their pins, its socket
//! directory. Set up before anything is written, so that a session refused for a missing layer
//! or a program the kernel rejects leaves no log behind; released last.
use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use nix::fcntl::{Flock, FlockArg};
use tokio::task::JoinHandle;
use warden_common::NetConfig;

use super::{KILL_TIMEOUT, VERIFIER_LOGS, phases::Phases};
use crate::{
    agent_api,
    cgroup::{self, SessionCgroup},
    kernel::{
        bpffs,
        hook_tier::{HookTier, TierChoice},
        programs::{
            EventSource, ExecTokens, KernelPrograms, LoadOptions, UnixSettings, forward_kernel_log,
        },
    },
    layers,
    network::{
        allowlist::Allowlist,
        policy::{NetworkMode, NetworkPolicy},
        unix_sockets,
    },
    recovery::Registration,
};

/// What the kernel side is made from.
pub struct KernelSetup<'a> {
    pub id: &'a str,
    pub cgroup_root: Option<PathBuf>,
    pub max_pids: u32,
    pub ring_buffer_bytes: Option<u32>,
    pub state_dir: &'a Path,
    pub dns_proxy_port: u16,
    /// Where the session's credential proxy listens, if it has one.
    pub credential_proxy: Option<std::net::SocketAddrV4>,
    pub policy: &'a NetworkPolicy,
    pub hook_tier: TierChoice,
    /// What the LSM layer refuses to open.
    pub lsm_protected: Vec<PathBuf>,
    pub required_layers:
        &'a [warden_requirements::Resolved<warden_requirements::values::KernelLayer>],
    pub phases: &'a mut Phases,
    /// Where sessions waiting for room in the kernel take turns (the run directory).
    pub run_dir: &'a Path,
    /// Asked while the session waits for room in the kernel: why the person gave up, if
    /// they did.
    pub gave_up: &'a mut dyn FnMut() -> Option<String>,
}

pub struct KernelSide {
    pub cgroup: SessionCgroup,
    pub programs: KernelPrograms,
    pub pin_dir: PathBuf,
    pub socket_dir: unix_sockets::MountPoint,
    pub allowlist: Arc<Mutex<Allowlist>>,
    /// Taken by the exec gate when the command starts.
    pub exec_tokens: Option<ExecTokens>,
    /// The kernel-dependent layers in force, and those this kernel lacks.
    pub layers_in_force: Vec<String>,
    pub layers_missing: Vec<String>,
    kernel_log: Option<JoinHandle<std::io::Result<()>>>,
}

/// The longest pause between two tries of a session waiting for room on a full hook.
const ROOM_RETRY_MAX: Duration = Duration::from_secs(4);
/// How often a waiting session asks whether the person gave up.
const GIVE_UP_POLL: Duration = Duration::from_millis(100);

/// Loads the programs; while a hook they attach to is full (other sessions hold the kernel's
/// limit of programs on it), says so once and waits its turn in `queue` (a directory every
/// session of the machine shares), then tries again, less often each time, until there is
/// room or the person gives up. Each try costs a load and verification (tenths of a second
/// of CPU): waiting sessions take turns, so that many of them cost one try at a time, not one
/// each.
fn load_when_room(
    options: impl Fn() -> LoadOptions,
    queue: &Path,
    gave_up: &mut dyn FnMut() -> Option<String>,
) -> anyhow::Result<(KernelPrograms, EventSource)> {
    let full = match KernelPrograms::load(options()) {
        Err(e) if e.is_hook_full() => e,
        other => return Ok(other?),
    };
    eprintln!("warden: {full}; the session starts when another one ends (Ctrl-C gives up)");
    let mut give_up = || match gave_up() {
        Some(why) => Err(anyhow::anyhow!(
            "{why} while waiting for room in the kernel: {full}"
        )),
        None => Ok(()),
    };
    let _turn = wait_for_turn(queue, &mut give_up)?;
    let mut pause = Duration::from_millis(250);
    loop {
        match KernelPrograms::load(options()) {
            Err(e) if e.is_hook_full() => {}
            Err(e) => return Err(e.into()),
            Ok(loaded) => {
                eprintln!("warden: there is room now; the session starts");
                return Ok(loaded);
            }
        }
        let until = Instant::now() + pause;
        while Instant::now() < until {
            give_up()?;
            std::thread::sleep(GIVE_UP_POLL);
        }
        pause = (pause * 2).min(ROOM_RETRY_MAX);
    }
}

/// The exclusive lock on `queue`, taken when no other waiting session holds it.
fn wait_for_turn(
    queue: &Path,
    give_up: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Flock<std::fs::File>> {
    std::fs::create_dir_all(queue).with_context(|| format!("creating {}", queue.display()))?;
    loop {
        let dir =
            std::fs::File::open(queue).with_context(|| format!("opening {}", queue.display()))?;
        match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
            Ok(turn) => return Ok(turn),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                give_up()?;
                std::thread::sleep(GIVE_UP_POLL);
            }
            Err((_, e)) => {
                return Err(e).with_context(|| format!("locking {}", queue.display()));
            }
        }
    }
}

/// The session's processes are gone (proof that [`KernelSide::empty`] ran).
pub struct Emptied {
    pub killed: u32,
}

impl KernelSide {
    pub fn set_up(s: KernelSetup<'_>) -> anyhow::Result<(Self, EventSource)> {
        let root = match s.cgroup_root {
            Some(r) => r,
            None => cgroup::find_cgroup2_mount()?,
        };
        let mut cgroup = SessionCgroup::create(&root, s.id)?;
        cgroup.limit_pids(s.max_pids)?;
        s.phases.done("cgroup");
        let options = || LoadOptions {
            session_level: cgroup.level(),
            ring_buffer_bytes: s.ring_buffer_bytes,
            verifier_log_dir: s.state_dir.join(VERIFIER_LOGS),
            net: NetConfig {
                dns_proxy_port: s.dns_proxy_port,
                credential_proxy_port: s.credential_proxy.map_or(0, |a| a.port()),
                enforce: u32::from(s.policy.mode == NetworkMode::Enforce),
                // In memory as the kernel's `user_ip4`: network byte order.
                credential_proxy_ip4: s
                    .credential_proxy
                    .map_or(0, |a| u32::from_ne_bytes(a.ip().octets())),
            },
            icmp: s.policy.allow_icmp,
            hook_tier: s.hook_tier,
            protected: s.lsm_protected.clone(),
        };
        let (mut programs, source) =
            load_when_room(options, s.run_dir, s.gave_up).context("loading the kernel programs")?;
        let layer_states = layers::on_kernel(layers::KernelFacts {
            landlock_abi: warden_agent::fs_confinement::landlock_abi(),
            pids_controller: cgroup.pids_limited(),
            unix_socket_hooks: programs.unix_enforced(),
            bpf_lsm: programs.tier().tier == HookTier::BpfLsm,
        });
        layers::check_required(&layer_states, s.required_layers)?;
        let (layers_in_force, layers_missing) = layers::names(&layer_states);
        s.phases.done("programs");

        programs.add_session(cgroup.id())?;
        let kernel_log = programs
            .take_logger()
            .map(|logger| tokio::spawn(forward_kernel_log(logger)));
        let exec_tokens = Some(programs.take_exec_tokens()?);
        let allowlist = Arc::new(Mutex::new(Allowlist::new(
            programs.take_network_maps()?,
            s.policy,
        )?));
        bpffs::ensure_mounted().context("mounting bpffs")?;
        let pin_dir = bpffs::session_dir(s.id);
        programs
            .attach_network(cgroup.path(), &pin_dir)
            .context("attaching the network programs")?;
        let socket_dir = unix_sockets::MountPoint::create(unix_sockets::socket_dir(s.id))
            .context("the session's socket directory")?;
        let mut unix_allowed = s.policy.unix_sockets.clone();
        unix_allowed.push((
            agent_api::socket_path(Path::new(agent_api::SOCKET_DIR), s.id),
            warden_common::RULE_UNIX_AGENT_API,
        ));
        programs
            .attach_unix(
                cgroup.path(),
                &pin_dir,
                &UnixSettings {
                    dir: socket_dir.path(),
                    allowed: &unix_allowed,
                    enforce: s.policy.mode == NetworkMode::Enforce,
                    abstract_scoped: warden_agent::fs_confinement::landlock_abi()
                        >= warden_agent::syscall_filter::LANDLOCK_SCOPE_ABI,
                },
            )
            .context("attaching the UNIX socket programs")?;
        s.phases.done("cgroup programs");
        Ok((
            Self {
                cgroup,
                programs,
                pin_dir,
                socket_dir,
                allowlist,
                exec_tokens,
                layers_in_force,
                layers_missing,
                kernel_log,
            },
            source,
        ))
    }

    /// Kills whatever the command left behind (daemons, background jobs) and waits until the
    /// cgroup is empty: after this no process of the session makes another event.
    pub fn empty(&mut self) -> anyhow::Result<Emptied> {
        let killed = self.cgroup.kill_all()?;
        self.cgroup.wait_empty(KILL_TIMEOUT)?;
        Ok(Emptied { killed })
    }

    /// The end: the cgroup removed, then the session deregistered (recovery must not end it
    /// again), then the programs detached.
    pub fn release(mut self, registration: Registration) -> anyhow::Result<()> {
        self.programs.unpin_network();
        self.cgroup.remove()?;
        drop(registration);
        if let Some(task) = self.kernel_log.take() {
            task.abort();
        }
        self.programs.release();
        Ok(())
    }
}
