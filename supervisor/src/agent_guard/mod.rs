//! The agent guard: the requirements' agent programs (`[[service.agent_programs]]`) may only
//! run inside a Warden session.
//!
//! One kernel program per machine (`kernel/agent_guard.rs`) sees every exec outside the
//! sessions' cgroups and kills a listed program there before its first instruction. This
//! module decides what it looks for (`listed`), records each kill in the machine's guard log
//! (`machine_log`) with what it was (`verdict`), and tells the person who started it how to
//! start it under Warden (`tell_user`). The program and its maps are pinned: a guard that
//! stops without unpinning, or dies, leaves them enforcing, and the next `start` re-adopts
//! them and records what they killed meanwhile.
//!
//! `warden guard` runs this until it is stopped; the daemon embeds the same calls: `start`,
//! `run` (cancel-safe: what it has not read stays in the kernel's buffer), `update` when the
//! requirements change, `stop`.
mod identity;
mod listed;
mod machine_log;
mod tell_user;
mod verdict;

use std::{
    future::Future,
    io,
    os::fd::AsFd as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use tokio::io::{Interest, unix::AsyncFd};
use warden_common::{
    FILENAME_MAX, GUARD_ARGV_MAX, GUARD_ARGV_TRUNCATED, GUARD_ARGV_UNREADABLE, GUARD_BY_SIZE,
    GUARD_FILENAME_TRUNCATED, GuardConfig, GuardEvent,
};
use warden_records::{
    audit_log::AuditWriter,
    clock,
    events::{
        Event, EventsLost, GuardArmed, GuardArming, GuardDisarmed, GuardKilled,
        escape::escape_bytes,
    },
};
use warden_requirements::values::AgentProgram;

use crate::{
    cgroup,
    kernel::{
        agent_guard::{self as object, GuardObject},
        programs::KernelError,
    },
};
use listed::{Digests, Resolved};
use verdict::Kill;

pub use machine_log::path as log_path;

/// How often the listed files are looked at again: an agent's update replaces its file.
const REFRESH: Duration = Duration::from_secs(10);
/// How often the kills are read without a wakeup, and lost ones counted.
const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("the sessions' cgroup: {0}")]
    Cgroup(String),
    #[error("the guard's log {path}: {source}")]
    Log { path: PathBuf, source: io::Error },
    #[error("waiting for the guard's kernel buffer: {0}")]
    Poll(io::Error),
}

pub struct Options {
    /// The guard's log is `STATE_DIR/guard/events.jsonl`; a verifier refusal's log goes to
    /// `STATE_DIR/verifier/`.
    pub state_dir: PathBuf,
    /// The cgroup v2 directory sessions are made under (`warden run --cgroup-root`); `None`:
    /// the cgroup2 mount.
    pub cgroup_root: Option<PathBuf>,
}

/// The guard, in force until `stop` (and after it, unless the pins are removed).
pub struct AgentGuard {
    object: GuardObject,
    events: RingBuf<MapData>,
    log: AuditWriter,
    listed: Vec<Resolved>,
    digests: Digests,
    config: GuardConfig,
    /// Lost kills already in an `events.lost` record (the kernel counts since load).
    lost_recorded: u64,
    /// About the log itself, kept for the next `guard.armed`.
    log_warning: Option<String>,
}

impl AgentGuard {
    /// Guards `programs`: re-adopts the guard pinned by an earlier Warden (and records what it
    /// killed meanwhile), or loads it. Fails if another process guards already.
    pub fn start(programs: &[AgentProgram], opts: &Options) -> Result<Self, GuardError> {
        let cgroup_err = |e: cgroup::CgroupError| GuardError::Cgroup(e.to_string());
        let root = match &opts.cgroup_root {
            Some(root) => root.clone(),
            None => cgroup::find_cgroup2_mount().map_err(cgroup_err)?,
        };
        let (_, parent_id, parent_level) = cgroup::sessions_parent(&root).map_err(cgroup_err)?;
        // Where sessions are; `listed::contents` adds the listed paths' lengths.
        let config = GuardConfig {
            parent_id,
            parent_level,
            ..Default::default()
        };
        let mut digests = Digests::default();
        let listed: Vec<Resolved> = programs
            .iter()
            .map(|p| listed::resolve(p, &mut digests))
            .collect();
        let log_path = machine_log::path(&opts.state_dir);
        // Opened before the kernel side: a guard whose kills could not be recorded would not
        // start.
        let opened = machine_log::open(&opts.state_dir).map_err(|source| GuardError::Log {
            path: log_path,
            source,
        })?;
        let mut object = GuardObject::open(
            &listed::contents(&listed, config),
            &opts.state_dir.join("verifier"),
        )?;
        let events = object
            .take_events()
            .ok_or(KernelError::MissingMap("GUARD_EVENTS"))?;
        let kernel_lost = object.lost()?;
        // The log's count is this program's only if the program is the one found pinned.
        let lost_recorded = match object.readopted() {
            true if opened.lost_recorded <= kernel_lost => opened.lost_recorded,
            _ => 0,
        };
        let how = match object.readopted() {
            true => GuardArming::Readopted,
            false => GuardArming::Loaded,
        };
        let mut guard = Self {
            object,
            events,
            log: opened.writer,
            listed,
            digests,
            config,
            lost_recorded,
            log_warning: opened.warning,
        };
        guard.record_armed(how)?;
        guard.drain()?;
        Ok(guard)
    }

    /// Whether the guard was found pinned, left by an earlier Warden.
    pub fn readopted(&self) -> bool {
        self.object.readopted()
    }

    /// The guard's log.
    pub fn log_path(&self) -> &Path {
        self.log.path()
    }

    /// One line per listed program: what is recognised as it.
    pub fn describe(&self) -> Vec<String> {
        self.listed.iter().map(listed::describe).collect()
    }

    /// What the guard cannot do as listed (also in its `guard.armed` record).
    pub fn warnings(&self) -> Vec<String> {
        self.listed
            .iter()
            .flat_map(|r| r.warnings.iter().cloned())
            .chain(self.log_warning.clone())
            .collect()
    }

    /// Guards `programs` from now on (the requirements changed).
    pub fn update(&mut self, programs: &[AgentProgram]) -> Result<(), GuardError> {
        self.listed = programs
            .iter()
            .map(|p| listed::resolve(p, &mut self.digests))
            .collect();
        self.object
            .set(&listed::contents(&self.listed, self.config))?;
        self.record_armed(GuardArming::Updated)
    }

    /// Looks at the listed files again; a changed one (an update of the agent) is guarded as
    /// it is now.
    fn refresh(&mut self) -> Result<(), GuardError> {
        let programs: Vec<AgentProgram> = self.listed.iter().map(|r| r.listed.clone()).collect();
        let now: Vec<Resolved> = programs
            .iter()
            .map(|p| listed::resolve(p, &mut self.digests))
            .collect();
        if !listed::changed(&self.listed, &now) {
            return Ok(());
        }
        self.listed = now;
        self.object
            .set(&listed::contents(&self.listed, self.config))?;
        self.record_armed(GuardArming::Refreshed)
    }

    /// Records the kills the kernel reported since the last call; returns how many.
    pub fn drain(&mut self) -> Result<usize, GuardError> {
        let mut kills = Vec::new();
        while let Some(item) = self.events.next() {
            match decode(&item) {
                Some(kill) => kills.push(kill),
                None => tracing::error!("a guard record of {} bytes: not a kill", item.len()),
            }
        }
        for kill in &kills {
            let record = self.killed(kill);
            self.append(kill.boot_ns, Event::GuardKilled(Box::new(record)))?;
        }
        let lost = self.record_lost()?;
        if !kills.is_empty() || lost {
            self.sync()?;
        }
        Ok(kills.len())
    }

    /// Reads and records kills until `stop` completes, looking at the listed files again
    /// every few seconds. Cancel-safe.
    pub async fn run<T>(&mut self, stop: impl Future<Output = T>) -> Result<T, GuardError> {
        // A descriptor of its own for the ring buffer, so that the reader is not borrowed.
        let fd = self
            .events
            .as_fd()
            .try_clone_to_owned()
            .map_err(GuardError::Poll)?;
        // SAFETY: the AsyncFd owns `fd`, which stays open and the same while it lives.
        let ring = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| GuardError::Poll(e.into_parts().1))?;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut refreshed = Instant::now();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                out = &mut stop => {
                    self.drain()?;
                    return Ok(out);
                }
                ready = ring.readable() => {
                    let mut ready = ready.map_err(GuardError::Poll)?;
                    self.drain()?;
                    ready.clear_ready();
                }
                _ = tick.tick() => {
                    self.drain()?;
                    if refreshed.elapsed() >= REFRESH {
                        self.refresh()?;
                        refreshed = Instant::now();
                    }
                }
            }
        }
    }

    /// Stops guarding. `unpin`: the guard leaves the kernel (the daemon does this only when no
    /// program is listed any more); otherwise the kernel goes on killing, and the next start
    /// re-adopts it.
    pub fn stop(mut self, unpin: bool) -> Result<(), GuardError> {
        self.drain()?;
        self.append(
            clock::boot_ns(),
            Event::GuardDisarmed(GuardDisarmed {
                unpinned: unpin,
                supervisor_pid: std::process::id(),
            }),
        )?;
        self.sync()?;
        if unpin {
            self.object.unpin()?;
        }
        Ok(())
    }

    fn killed(&self, e: &GuardEvent) -> GuardKilled {
        let filename = &e.filename[..(e.filename_len as usize).min(FILENAME_MAX)];
        let kill = Kill {
            by: e.by,
            file: e.file,
            size: e.size,
            filename,
        };
        let found = (e.by == GUARD_BY_SIZE)
            .then(|| verdict::refind(&kill, e.ppid))
            .flatten();
        let judged = verdict::judge(&kill, &self.listed, found);
        let argv = crate::decode::split_argv(&e.argv[..(e.argv_len as usize).min(GUARD_ARGV_MAX)]);
        let argv_truncated = e.flags & GUARD_ARGV_TRUNCATED != 0;
        let filename = escape_bytes(filename);
        let told_user = tell_user::tell(e.ppid, &tell_user::hint(&filename, &argv, argv_truncated));
        GuardKilled {
            pid: e.pid,
            ppid: e.ppid,
            uid: e.uid,
            gid: e.gid,
            user: nix::unistd::User::from_uid(e.uid.into())
                .ok()
                .flatten()
                .map(|u| escape_bytes(u.name.as_bytes())),
            filename,
            filename_truncated: e.flags & GUARD_FILENAME_TRUNCATED != 0,
            argv,
            argv_truncated,
            argv_unreadable: e.flags & GUARD_ARGV_UNREADABLE != 0,
            verdict: judged.verdict,
            program: judged.program,
            file: identity::spell(&e.file),
            size: e.size,
            sha256: judged.sha256.as_ref().map(identity::hex),
            told_user,
        }
    }

    /// An `events.lost` record when kills were not reported (the ring buffer was full).
    fn record_lost(&mut self) -> Result<bool, GuardError> {
        let total = self.object.lost()?;
        if total <= self.lost_recorded {
            return Ok(false);
        }
        let lost = EventsLost {
            exec: total - self.lost_recorded,
            total,
            ..Default::default()
        };
        self.lost_recorded = total;
        self.append(clock::boot_ns(), Event::EventsLost(lost))?;
        Ok(true)
    }

    fn record_armed(&mut self, how: GuardArming) -> Result<(), GuardError> {
        let armed = GuardArmed {
            how,
            programs: self.listed.iter().map(listed::guarded).collect(),
            warnings: self.warnings(),
            warden_version: env!("CARGO_PKG_VERSION").to_string(),
            supervisor_pid: std::process::id(),
            kernel_program: self.object.program_id(),
        };
        self.append(clock::boot_ns(), Event::GuardArmed(Box::new(armed)))?;
        self.sync()
    }

    fn append(&mut self, boot_ns: u64, event: Event) -> Result<(), GuardError> {
        self.log
            .append(boot_ns, event)
            .map_err(|source| GuardError::Log {
                path: self.log.path().to_path_buf(),
                source,
            })?;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), GuardError> {
        self.log.sync().map_err(|source| GuardError::Log {
            path: self.log.path().to_path_buf(),
            source,
        })
    }
}

/// Whether a guard is in the kernel (pinned) on this machine, whoever left it there.
pub fn pinned() -> bool {
    object::pinned()
}

/// A kill as the kernel wrote it.
fn decode(bytes: &[u8]) -> Option<GuardEvent> {
    // SAFETY: the length is checked and `GuardEvent` is plain `repr(C)` data valid for any bits.
    (bytes.len() >= size_of::<GuardEvent>())
        .then(|| unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<GuardEvent>()) })
}
