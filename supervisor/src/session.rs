//! `warden run`: one supervised session from cgroup creation to the last record.
use std::{
    ffi::OsString,
    net::SocketAddr,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow};
use tokio::sync::{mpsc, oneshot};
use warden_agent::spec::{LaunchSpec, MountOp, SandboxMode};
use warden_common::NetConfig;

use crate::{
    agent_api,
    approvals::{self, Broker},
    audit_log::{self, AuditWriter},
    cgroup::{self, SessionCgroup},
    clock::{self, Clock},
    events::{
        EndReason, Event, LimitReached, SCHEMA_VERSION, SessionEnd, SessionStart,
        escape::{escape_argv, escape_bytes},
    },
    exec_gate::Gate,
    exec_policy::ExecPolicy,
    kernel::{
        bpffs,
        hook_tier::HookTier,
        programs::{KernelPrograms, LoadOptions, UnixSettings, forward_kernel_log},
    },
    launch::{self, Launched},
    layers,
    network::{
        SessionLabels,
        allowlist::Allowlist,
        dns_budget::{self, DnsBudget},
        dns_proxy::{self, Proxy, Unlisted},
        policy::{NetworkMode, NetworkPolicy},
        unix_sockets,
    },
    otlp::{self, TelemetryOptions},
    pipeline::Pipeline,
    recovery::{self, SessionInfo},
    signals::Signals,
    target_user::TargetUser,
    vcs_protection,
};

fn escape_path(p: &Path) -> String {
    escape_bytes(p.as_os_str().as_encoded_bytes())
}

pub struct NetworkOptions {
    pub policy: NetworkPolicy,
    /// Where allowed DNS queries go.
    pub upstreams: Vec<SocketAddr>,
    /// Shortest time an answer's addresses stay allowed.
    pub ttl_floor: Duration,
    pub dns_budget: dns_budget::Limits,
}

/// The sandbox of the launcher (file system, exec rules).
pub struct SandboxOptions {
    pub mode: SandboxMode,
    pub workspace: PathBuf,
    /// Writable in workspace-write mode (the workspace, temp directories, more by flag).
    pub write_roots: Vec<PathBuf>,
    /// Denied on top of `protected_paths`.
    pub denied_paths: Vec<PathBuf>,
    /// Readable, never writable, even inside a write root.
    pub read_only_paths: Vec<PathBuf>,
    /// VCS hooks and config in the write roots read-only (workspace-write mode).
    pub protect_vcs_metadata: bool,
    pub exec_policy: ExecPolicy,
}

/// Under the user's home: credential stores and browser profiles.
const PROTECTED_IN_HOME: &[&str] = &[
    ".ssh",
    ".aws",
    ".gnupg",
    ".config/gcloud",
    ".azure",
    ".kube",
    ".docker",
    ".netrc",
    ".git-credentials",
    ".password-store",
    ".mozilla",
    ".config/google-chrome",
    ".config/chromium",
    ".config/BraveSoftware",
    // Warden's own user configuration: the agent must not change its next session.
    ".config/warden",
];

/// Paths no session may read or write: credentials, and Warden's own requirements, state,
/// logs and pinned programs.
pub fn protected_paths(home: &Path, state_dir: &Path, run_dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = PROTECTED_IN_HOME.iter().map(|p| home.join(p)).collect();
    paths.extend(
        [
            "/etc/warden",
            "/var/lib/warden",
            "/run/warden",
            bpffs::MOUNT_POINT,
        ]
        .iter()
        .map(PathBuf::from),
    );
    paths.push(state_dir.to_path_buf());
    paths.push(run_dir.to_path_buf());
    paths
}

pub struct RunOptions {
    pub command: Vec<OsString>,
    pub sandbox: SandboxOptions,
    pub approvals: approvals::Options,
    pub user: TargetUser,
    /// The requirement and configuration files the settings came from.
    pub settings_files: Vec<String>,
    /// Problems met while loading them that did not stop the session.
    pub settings_warnings: Vec<String>,
    /// The requirement files to watch while the session runs.
    pub requirement_paths: warden_requirements::LayerPaths,
    /// Print events to stderr as they happen.
    pub live: bool,
    pub quiet: bool,
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
    pub cgroup_root: Option<PathBuf>,
    pub ring_buffer_bytes: Option<u32>,
    pub network: NetworkOptions,
    /// Most tasks (processes and threads) the session may have at once.
    pub max_pids: u32,
    /// Where the session's telemetry goes, if anywhere.
    pub telemetry: Option<TelemetryOptions>,
    /// Prompts reported through the agent API are kept in the log (else redacted).
    pub log_prompts: bool,
    /// Which hook tiers the kernel programs may use (`--hook-tier`).
    pub hook_tier: crate::kernel::hook_tier::TierChoice,
    /// Kernel layers without which the session must not start (requirements).
    pub required_layers:
        Vec<warden_requirements::Resolved<warden_requirements::values::KernelLayer>>,
}

/// How long processes get to disappear after SIGKILL before Warden reports a failure.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a terminal prompt gets to give the terminal back at the end.
const TERMINAL_GRACE: Duration = Duration::from_secs(3);
/// How often expired DNS-derived addresses are removed from the allow maps.
const EXPIRY_SWEEP: Duration = Duration::from_secs(1);

/// Under the state directory: whole logs of programs the kernel's verifier refused.
pub const VERIFIER_LOGS: &str = "verifier";

pub fn new_session_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("creating {}", path.display()))
}

/// Runs a session and returns the status `warden run` exits with.
pub async fn run(opts: RunOptions) -> anyhow::Result<i32> {
    if !nix::unistd::Uid::effective().is_root() {
        anyhow::bail!("warden run must run as root (try: sudo warden run -- ...)");
    }
    for orphan in recovery::recover(&opts.run_dir) {
        eprintln!(
            "warden: ended session {} left by a supervisor that died ({} processes killed){}",
            orphan.id,
            orphan.killed,
            orphan.error.map(|e| format!(": {e}")).unwrap_or_default()
        );
    }
    let user = opts.user;
    // Before anything of the session exists: a repository Warden cannot protect stops it here.
    let vcs =
        if opts.sandbox.mode == SandboxMode::WorkspaceWrite && opts.sandbox.protect_vcs_metadata {
            let owner = vcs_protection::Owner {
                uid: user.uid,
                gid: user.gid,
            };
            vcs_protection::plan(&opts.sandbox.write_roots, owner, &user.home)
                .context("protecting VCS metadata")?
        } else {
            vcs_protection::Protection::default()
        };
    let id = new_session_id();
    // The cgroup and the programs first: a session refused for a missing layer leaves no log
    // behind.
    let root = match &opts.cgroup_root {
        Some(r) => r.clone(),
        None => cgroup::find_cgroup2_mount()?,
    };
    let mut cgroup = SessionCgroup::create(&root, &id)?;
    cgroup.limit_pids(opts.max_pids)?;
    let protected = protected_paths(&user.home, &opts.state_dir, &opts.run_dir)
        .into_iter()
        .chain(opts.sandbox.denied_paths)
        .collect::<Vec<_>>();
    // What the LSM layer refuses to open: what Landlock denies, as Landlock resolves it.
    let lsm_protected: Vec<PathBuf> = if opts.sandbox.mode == SandboxMode::DangerFullAccess {
        Vec::new()
    } else {
        protected
            .iter()
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect()
    };
    let proxy_sockets = dns_proxy::bind().context("binding the DNS proxy")?;
    let policy = Arc::new(opts.network.policy);
    let (mut programs, source) = KernelPrograms::load(LoadOptions {
        session_level: cgroup.level(),
        ring_buffer_bytes: opts.ring_buffer_bytes,
        verifier_log_dir: opts.state_dir.join(VERIFIER_LOGS),
        net: NetConfig {
            dns_proxy_port: proxy_sockets.port,
            _pad: 0,
            enforce: u32::from(policy.mode == NetworkMode::Enforce),
        },
        icmp: policy.allow_icmp,
        hook_tier: opts.hook_tier,
        protected: lsm_protected.clone(),
    })
    .context("loading the kernel programs")?;
    let layer_states = layers::on_kernel(layers::KernelFacts {
        landlock_abi: warden_agent::fs_confinement::landlock_abi(),
        pids_controller: cgroup.pids_limited(),
        unix_socket_hooks: programs.unix_enforced(),
        bpf_lsm: programs.tier().tier == HookTier::BpfLsm,
    });
    layers::check_required(&layer_states, &opts.required_layers)?;
    let (layers_in_force, layers_missing) = layers::names(&layer_states);
    let dir = opts.state_dir.join("sessions").join(&id);
    create_private_dir(&dir)?;
    let log_path = dir.join(audit_log::FILE_NAME);
    let writer = AuditWriter::create(&log_path, &id, Clock::new())
        .with_context(|| format!("creating {}", log_path.display()))?;
    let telemetry = match &opts.telemetry {
        Some(t) => Some(otlp::live::LiveExport::start(t, &opts.state_dir, &dir)?),
        None => None,
    };

    programs.add_session(cgroup.id())?;
    let kernel_log = programs
        .take_logger()
        .map(|logger| tokio::spawn(forward_kernel_log(logger)));
    let mut exec_tokens = Some(programs.take_exec_tokens()?);
    let allowlist = Arc::new(Mutex::new(Allowlist::new(
        programs.take_network_maps()?,
        &policy,
    )?));
    bpffs::ensure_mounted().context("mounting bpffs")?;
    let pin_dir = bpffs::session_dir(&id);
    programs
        .attach_network(cgroup.path(), &pin_dir)
        .context("attaching the network programs")?;
    let socket_dir = unix_sockets::MountPoint::create(unix_sockets::socket_dir(&id))
        .context("the session's socket directory")?;
    let mut unix_allowed = policy.unix_sockets.clone();
    unix_allowed.push((
        agent_api::socket_path(Path::new(agent_api::SOCKET_DIR), &id),
        warden_common::RULE_UNIX_AGENT_API,
    ));
    programs
        .attach_unix(
            cgroup.path(),
            &pin_dir,
            &UnixSettings {
                dir: socket_dir.path(),
                allowed: &unix_allowed,
                enforce: policy.mode == NetworkMode::Enforce,
                abstract_scoped: warden_agent::fs_confinement::landlock_abi()
                    >= warden_agent::syscall_filter::LANDLOCK_SCOPE_ABI,
            },
        )
        .context("attaching the UNIX socket programs")?;
    let allowed_paths: Vec<PathBuf> = policy.unix_sockets.iter().map(|(p, _)| p.clone()).collect();
    let agent_env = unix_sockets::agent_env(std::env::vars_os(), socket_dir.path(), &allowed_paths);

    let registration = recovery::register(
        &opts.run_dir,
        &SessionInfo {
            id: id.clone(),
            log: log_path.clone(),
            cgroup: cgroup.path().to_path_buf(),
            pin_dir: pin_dir.clone(),
            supervisor_pid: std::process::id(),
        },
    )
    .with_context(|| format!("registering the session in {}", opts.run_dir.display()))?;

    if !opts.quiet {
        eprintln!("warden: session {id} (log {})", log_path.display());
        if !layers_missing.is_empty() {
            eprintln!(
                "warden: this kernel does not give {} (`warden doctor` says what Warden does instead)",
                layers_missing.join(", ")
            );
        }
    }
    let (command, command_truncated) = escape_argv(
        opts.command.iter().map(|a| a.as_encoded_bytes()),
        warden_common::ARGV_MAX,
    );
    let labels = Arc::new(SessionLabels {
        policy: policy.clone(),
        allowlist: allowlist.clone(),
        protected: lsm_protected.iter().map(|p| escape_path(p)).collect(),
    });
    let mut pipeline = Pipeline::new(writer, opts.live, labels);
    pipeline.append(Event::SessionStart(Box::new(SessionStart {
        schema: SCHEMA_VERSION,
        warden_version: env!("CARGO_PKG_VERSION").into(),
        command,
        command_truncated,
        user: user.name.clone(),
        uid: user.uid,
        gid: user.gid,
        cgroup: cgroup.path().display().to_string(),
        cgroup_id: cgroup.id(),
        supervisor_pid: std::process::id(),
        hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        kernel_programs: programs.program_ids(),
        hook_tier: programs.tier().tier.as_str().into(),
        hook_tiers_unavailable: programs.tier().unavailable_lines(),
        settings_files: opts.settings_files,
        settings_warnings: opts.settings_warnings,
        layers: layers_in_force,
        missing_layers: layers_missing,
        env_removed: agent_env.removed.clone(),
        vcs_read_only: vcs.read_only.iter().map(|p| escape_path(p)).collect(),
        vcs_pinned: vcs.pinned.iter().map(|p| escape_path(p)).collect(),
    })))?;

    let (events_tx, events_rx) = mpsc::channel(1024);
    let (stop, stop_rx) = oneshot::channel();
    let mut pipeline_task = tokio::spawn(pipeline.run(source, events_rx, stop_rx));
    let telemetry = telemetry.map(|t| {
        t.follow(
            &log_path,
            &dir,
            cgroup.path().join("cgroup.freeze"),
            &events_tx,
        )
    });
    let session_cgroup = cgroup.hierarchy_path().display().to_string();
    let agent_api = agent_api::serve(
        Path::new(agent_api::SOCKET_DIR),
        &id,
        session_cgroup.clone(),
        opts.log_prompts,
        events_tx.clone(),
    )
    .with_context(|| format!("the agent API socket in {}", agent_api::SOCKET_DIR))?;
    // Taken by the gate if it starts; dropped otherwise, so the pipeline knows no more comes.
    let mut gate_events = Some(events_tx.clone());
    let events_tx_watch = events_tx.clone();
    let broker = Broker::new(
        approvals::Config {
            session: id.clone(),
            options: opts.approvals,
            risk: approvals::risk::Context {
                workspace: opts.sandbox.workspace.clone(),
                home: user.home.clone(),
                protected: protected.clone(),
            },
        },
        events_tx.clone(),
        tokio::runtime::Handle::current(),
    );
    let a = broker.config();
    let mut approval_tasks = Vec::new();
    let mut terminal_task = None;
    if !a.unattended {
        let socket = approvals::socket::bind(&approvals::socket::path(&opts.run_dir, &id))
            .context("binding the approvals socket")?;
        approval_tasks.push(tokio::spawn(socket.serve(
            broker.clone(),
            approvals::socket::Approvers {
                uid: user.uid,
                gid: a.approvers_gid,
            },
        )));
        if approvals::terminal::available() {
            let (queue, prompts) = mpsc::unbounded_channel();
            broker.attach_terminal(queue);
            terminal_task = Some(tokio::spawn(approvals::terminal::serve(
                broker.clone(),
                prompts,
            )));
        }
    }
    let dns_budget = Arc::new(std::sync::Mutex::new(DnsBudget::new(
        opts.network.dns_budget,
    )));
    let proxy = Arc::new(Proxy {
        policy: policy.clone(),
        allowlist: allowlist.clone(),
        upstreams: opts.network.upstreams,
        ttl_floor: opts.network.ttl_floor,
        events: events_tx,
        unlisted: if a.managed_domains_only {
            Unlisted::Deny(crate::events::DecisionSource::Requirements)
        } else {
            Unlisted::Ask(broker.clone())
        },
        budget: dns_budget.clone(),
    });
    let proxy_task = tokio::spawn(proxy.serve(proxy_sockets));
    let watch_task = tokio::spawn(crate::requirements_watch::watch(
        opts.requirement_paths,
        events_tx_watch,
    ));
    let sweep_task = tokio::spawn({
        let allowlist = allowlist.clone();
        async move {
            let mut tick = tokio::time::interval(EXPIRY_SWEEP);
            loop {
                tick.tick().await;
                let removed = allowlist
                    .lock()
                    .expect("allowlist lock")
                    .remove_expired(clock::boot_ns());
                for ip in removed {
                    tracing::debug!("{ip}: DNS-derived allowance expired");
                }
            }
        }
    });
    let started = Instant::now();
    let mut signals = Signals::new()?;

    let mut end = SessionEnd {
        reason: EndReason::Exited,
        exit_code: None,
        signal: None,
        status: 0,
        killed: 0,
        duration_ms: 0,
        records: 0,
        lost: 0,
        error: None,
    };
    let mut pipeline_failed = None;
    let mut env: Vec<(&str, &std::ffi::OsStr)> =
        vec![(warden_agent::api::SOCKET_ENV, agent_api.path.as_os_str())];
    env.extend(
        agent_env
            .set
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_os_str())),
    );
    let mut write_roots = opts.sandbox.write_roots;
    // The agent's own sockets go there (its $XDG_RUNTIME_DIR).
    write_roots.push(socket_dir.path().to_path_buf());
    let agent_mounts: Vec<MountOp> = std::iter::once(MountOp::SocketDir {
        path: socket_dir.path().to_path_buf(),
        uid: user.uid,
        gid: user.gid,
    })
    .chain(
        unix_sockets::hidden_dirs(user.uid, &allowed_paths)
            .into_iter()
            .map(|path| MountOp::Hide { path }),
    )
    .chain(vcs.mounts())
    .collect();
    let spec = LaunchSpec {
        uid: user.uid,
        gid: user.gid,
        groups: user.groups.clone(),
        mode: opts.sandbox.mode,
        write_roots,
        denied_paths: protected,
        read_only_paths: opts.sandbox.read_only_paths,
        supervisor_pid: std::process::id(),
        allow_icmp: policy.allow_icmp,
        mounts: agent_mounts,
    };
    let gate_stop = Arc::new(AtomicBool::new(false));
    let mut gate_thread = None;
    let launched = launch::spawn(
        &opts.command,
        &user,
        &cgroup,
        &spec,
        &env,
        &agent_env.removed,
    )
    .await;
    let launched = match launched {
        Ok(Launched {
            mut child,
            listener: None,
        }) => {
            // The launcher said why on stderr; its status says what kind of failure.
            let status = child.wait().await?;
            let error = std::io::Error::other(format!(
                "the launcher could not start the command ({status})"
            ));
            Err((error, status.code().unwrap_or(126)))
        }
        Ok(Launched {
            child,
            listener: Some(listener),
        }) => {
            let gate = Gate {
                tokens: exec_tokens.take().expect("taken once"),
                policy: opts.sandbox.exec_policy,
                home: user.home.clone(),
                events: gate_events.take().expect("taken once"),
                broker: broker.clone(),
                launcher_pid: child.id(),
                session_cgroup: session_cgroup.clone(),
            };
            let stop = gate_stop.clone();
            gate_thread = Some(std::thread::spawn(move || gate.run(listener, stop)));
            Ok(child)
        }
        Err(e) => {
            let status = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            Err((e, status))
        }
    };
    drop(gate_events);
    match launched {
        Err((e, status)) => {
            end.reason = EndReason::SpawnFailed;
            end.status = status;
            end.error = Some(format!(
                "cannot run {}: {e}",
                opts.command[0].to_string_lossy()
            ));
            eprintln!("warden: {}", end.error.as_deref().unwrap_or_default());
        }
        Ok(mut child) => loop {
            tokio::select! {
                status = child.wait() => {
                    let status = status?;
                    use std::os::unix::process::ExitStatusExt as _;
                    end.exit_code = status.code();
                    end.signal = status.signal();
                    if end.reason == EndReason::Exited {
                        end.status = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                    }
                    break;
                }
                received = signals.recv() => {
                    let received = received?;
                    if received.from_terminal {
                        tracing::debug!("{} from the terminal: left to the command", received.signal);
                        continue;
                    }
                    tracing::info!("{} from pid {}: ending the session", received.signal, received.sender_pid);
                    end.reason = EndReason::Interrupted;
                    end.status = 128 + received.signal as i32;
                    end.killed += cgroup.kill_all()?;
                }
                result = &mut pipeline_task => {
                    // The audit log cannot be written: the session must not go on unrecorded.
                    let err = match result {
                        Ok(Err(e)) => anyhow!(e),
                        Ok(Ok(_)) => anyhow!("event pipeline stopped unexpectedly"),
                        Err(e) => anyhow!(e),
                    };
                    cgroup.kill_all()?;
                    pipeline_failed = Some(err);
                    let _ = child.wait().await;
                    break;
                }
            }
        },
    }

    // Whatever the command left behind (daemons, background jobs) ends with the session.
    end.killed += cgroup.kill_all()?;
    cgroup.wait_empty(KILL_TIMEOUT)?;
    if let Some(t) = &telemetry {
        t.state(otlp::SessionState::Ending);
    }
    proxy_task.abort();
    drop(agent_api);
    sweep_task.abort();
    watch_task.abort();
    for t in &approval_tasks {
        t.abort();
    }
    // Whatever still waits for an answer (a held DNS answer) is refused, and the records
    // of the approval flow can be the last ones. A prompt on the terminal is taken down and
    // the terminal given back before Warden exits.
    broker.close();
    if let Some(t) = terminal_task
        && tokio::time::timeout(TERMINAL_GRACE, t).await.is_err()
    {
        tracing::warn!("the terminal prompt did not end in time");
    }
    gate_stop.store(true, Ordering::Relaxed);
    if let Some(t) = gate_thread {
        let _ = t.join();
    }
    for t in approval_tasks {
        let _ = t.await;
    }
    drop(broker);
    programs.unpin_network();
    if let Some(err) = pipeline_failed {
        cgroup.remove()?;
        return Err(err.context("the audit log failed; the session was killed"));
    }
    // Every exit tracepoint has fired by now: the final drain sees them all.
    let _ = proxy_task.await;
    let _ = watch_task.await;
    let _ = stop.send(());
    let finished = pipeline_task.await??;
    let mut writer = finished.writer;
    end.duration_ms = started.elapsed().as_millis() as u64;
    end.records = writer.records();
    end.lost = finished.lost_total;
    if let Some((hits, limit)) = cgroup.pids_limit_hits()
        && hits > 0
    {
        writer.append(
            clock::boot_ns(),
            Event::LimitReached(LimitReached {
                resource: "pids".into(),
                limit,
                hits,
            }),
        )?;
        end.records = writer.records();
    }
    let evicted = dns_budget.lock().expect("budget lock").evicted();
    if evicted > 0 {
        writer.append(
            clock::boot_ns(),
            Event::LimitReached(LimitReached {
                resource: dns_budget::EVICTION_RESOURCE.into(),
                limit: dns_budget::MAX_DOMAINS.to_string(),
                hits: evicted,
            }),
        )?;
        end.records = writer.records();
    }
    let status = end.status;
    let record = writer.append(clock::boot_ns(), Event::SessionEnd(end))?;
    writer.sync()?;
    if opts.live {
        eprintln!("{}", crate::events::render::line(&record));
    }
    cgroup.remove()?;
    drop(registration);
    if let Some(task) = kernel_log {
        task.abort();
    }
    programs.release();
    // Last: the session is over and deregistered (recovery must not end it again) while the
    // exporter gets its grace.
    if let Some(t) = telemetry {
        t.finish(&id, opts.quiet).await;
    }
    Ok(status)
}
