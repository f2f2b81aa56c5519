//! `warden run`: one supervised session from cgroup creation to the last record.
//!
//! `run` reads top to bottom as the session goes: the kernel side first (`kernel_side`: the
//! cgroup and the programs, before anything is written), the log and its first record, the
//! services that make events beside the command (`services`), the command itself until it
//! ends (`supervise`), then the end in the order the types enforce: the processes gone
//! (`Emptied`), the services stopped and the log drained, `session.end` written, the kernel
//! side released, the exporter's grace.
mod kernel_side;
mod phases;
mod services;
mod supervise;

use std::{
    ffi::OsString,
    net::SocketAddr,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use warden_agent::spec::{LaunchSpec, MountOp, SandboxMode};

use self::{
    kernel_side::{KernelSetup, KernelSide},
    phases::Phases,
    services::{GateSetup, Services, ServicesSetup, SessionCredentials},
    supervise::{Ending, supervise},
};
use crate::{
    approvals,
    audit_log::{self, AuditWriter},
    cgroup::SessionCgroup,
    clock::{self, Clock},
    events::{
        Event, LimitReached, Record, SCHEMA_VERSION, SessionEnd, SessionStart,
        escape::{escape_argv, escape_bytes},
    },
    exec_policy::ExecPolicy,
    kernel::bpffs,
    live_view::LiveView,
    network::{SessionLabels, dns_budget, dns_proxy, policy::NetworkPolicy, unix_sockets},
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
    /// Show the records on stderr as they are written (`--events`), in this view.
    pub live: Option<crate::live_view::EventsView>,
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
    /// Inherited variables passed on although their names look secret, and those never
    /// passed on.
    pub environment: warden_requirements::constrain::EnvironmentSettings,
    /// The stored credentials to hand over (`--credential`).
    pub credentials: crate::credentials::CredentialOptions,
    /// Kernel layers without which the session must not start (requirements).
    pub required_layers:
        Vec<warden_requirements::Resolved<warden_requirements::values::KernelLayer>>,
    /// Live triage and what its findings do (requirements); None: off.
    pub triage: Option<crate::live_triage::TriagePolicy>,
    /// Started by the service for a client: its link, and the environment it passed (the
    /// command's, never this root process's own).
    pub client: Option<ClientSide>,
}

/// A session's client, when the service started it.
pub struct ClientSide {
    pub link: Arc<crate::service::session_link::ClientLink>,
    pub signals: tokio::sync::mpsc::UnboundedReceiver<crate::service::session_link::FromClient>,
    pub env: Vec<(OsString, OsString)>,
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

/// Before the session's signals are read: whether Warden was asked to stop (a signal, or the
/// client's Ctrl-C, Ctrl-\\, hang-up or end), and by what.
fn gave_up_waiting(client: Option<&mut ClientSide>) -> Option<String> {
    use crate::service::{protocol::Forwarded, session_link::FromClient};
    if let Some(signal) = crate::signals::pending() {
        return Some(format!("{} received", signal.as_str()));
    }
    let client = client?;
    while let Ok(received) = client.signals.try_recv() {
        match received {
            FromClient::Gone => return Some("the client went away".to_owned()),
            FromClient::Signal(
                f @ (Forwarded::Interrupt
                | Forwarded::Quit
                | Forwarded::Hangup
                | Forwarded::Terminate),
            ) => return Some(format!("{} from the client", f.as_str())),
            // Nothing runs yet to be resized, stopped or resumed.
            FromClient::Signal(Forwarded::Resize | Forwarded::Suspend | Forwarded::Resume) => {}
        }
    }
    None
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
    let mut phases = Phases::start();
    if !nix::unistd::Uid::effective().is_root() {
        anyhow::bail!("warden run must run as root (try: sudo warden run -- ...)");
    }
    end_orphans(&opts.run_dir);
    let RunOptions {
        command,
        sandbox,
        approvals,
        user,
        settings_files,
        settings_warnings,
        requirement_paths,
        live,
        quiet,
        state_dir,
        run_dir,
        cgroup_root,
        ring_buffer_bytes,
        network,
        max_pids,
        telemetry,
        log_prompts,
        hook_tier,
        triage,
        required_layers,
        environment,
        credentials,
        client,
    } = opts;
    // Before anything of the session exists: a repository Warden cannot protect stops it here.
    let vcs = plan_vcs(&sandbox, &user)?;
    let mut handed = crate::credentials::prepare(
        &credentials,
        &user,
        &network.policy,
        approvals.managed_domains_only,
    )?;
    let git_helper = !handed.helper.is_empty();
    let credential_proxy = if handed.inject.is_empty() {
        None
    } else {
        Some(crate::credentials::inject::bind()?)
    };
    let id = new_session_id();
    let protected = protected_paths(&user.home, &state_dir, &run_dir)
        .into_iter()
        .chain(sandbox.denied_paths.iter().cloned())
        .collect::<Vec<_>>();
    // What the LSM layer refuses to open: what Landlock denies, as Landlock resolves it.
    let lsm_protected: Vec<PathBuf> = if sandbox.mode == SandboxMode::DangerFullAccess {
        Vec::new()
    } else {
        protected
            .iter()
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect()
    };
    let proxy_sockets = dns_proxy::bind().context("binding the DNS proxy")?;
    let policy = Arc::new(network.policy);
    phases.done("prepare");
    let mut client = client;
    let mut gave_up = || gave_up_waiting(client.as_mut());
    let (mut kernel, source) = KernelSide::set_up(KernelSetup {
        id: &id,
        cgroup_root,
        max_pids,
        ring_buffer_bytes,
        state_dir: &state_dir,
        dns_proxy_port: proxy_sockets.port,
        credential_proxy: credential_proxy.as_ref().map(|l| l.addr),
        policy: &policy,
        hook_tier,
        lsm_protected: lsm_protected.clone(),
        required_layers: &required_layers,
        phases: &mut phases,
        run_dir: &run_dir,
        gave_up: &mut gave_up,
    })?;
    let dir = state_dir.join("sessions").join(&id);
    create_private_dir(&dir)?;
    let log_path = dir.join(audit_log::FILE_NAME);
    let writer = AuditWriter::create(&log_path, &id, Clock::new())
        .with_context(|| format!("creating {}", log_path.display()))?;
    let telemetry = match &telemetry {
        Some(t) => Some(otlp::live::LiveExport::start(t, &state_dir, &dir)?),
        None => None,
    };
    let registration = recovery::register(
        &run_dir,
        &SessionInfo {
            id: id.clone(),
            log: log_path.clone(),
            cgroup: kernel.cgroup.path().to_path_buf(),
            pin_dir: kernel.pin_dir.clone(),
            supervisor_pid: std::process::id(),
            uid: user.uid,
            user: user.name.clone(),
            command: escape_argv(command.iter().map(|a| a.as_encoded_bytes()), 512)
                .0
                .join(" "),
            workspace: escape_path(&sandbox.workspace),
            started: Clock::new().rfc3339(clock::boot_ns()),
        },
    )
    .with_context(|| format!("registering the session in {}", run_dir.display()))?;
    phases.done("log");
    if !quiet {
        eprintln!("warden: session {id} (log {})", log_path.display());
        if !kernel.layers_missing.is_empty() {
            eprintln!(
                "warden: this kernel does not give {} (`warden doctor` says what Warden does instead)",
                kernel.layers_missing.join(", ")
            );
        }
    }
    let allowed_paths: Vec<PathBuf> = policy.unix_sockets.iter().map(|(p, _)| p.clone()).collect();
    // Read once: the socket variables and the secret-looking names are judged on one snapshot.
    let (client_link, client_signals, inherited) = match client {
        Some(c) => (Some(c.link), Some(c.signals), c.env),
        None => (None, None, std::env::vars_os().collect()),
    };
    if let Some(link) = &client_link {
        link.send(&crate::service::protocol::Reply::Started {
            session: id.clone(),
        });
    }
    let agent_env = unix_sockets::agent_env(
        inherited.iter().cloned(),
        kernel.socket_dir.path(),
        &allowed_paths,
    );
    let env_removed = removed_from_inheritance(&inherited, agent_env.removed, &environment);
    let labels = Arc::new(SessionLabels {
        policy: policy.clone(),
        allowlist: kernel.allowlist.clone(),
        protected: lsm_protected.iter().map(|p| escape_path(p)).collect(),
    });
    let triage_end = Arc::new(tokio::sync::Notify::new());
    let hangup = Arc::new(tokio::sync::Notify::new());
    let mut pipeline = Pipeline::new(writer, live.map(LiveView::new), labels);
    if let Some(policy) = triage {
        pipeline = pipeline.with_triage(crate::live_triage::LiveTriage::new(
            policy,
            triage_end.clone(),
        ));
    }
    pipeline.append(session_start(
        &command,
        &user,
        &kernel,
        StartFacts {
            settings_files,
            settings_warnings,
            env_removed: env_removed
                .iter()
                .map(|n| escape_bytes(n.as_encoded_bytes()))
                .collect(),
            vcs: &vcs,
            workspace: &sandbox.workspace,
        },
    ))?;
    for record in std::mem::take(&mut handed.records) {
        pipeline.append(record)?;
    }
    let session_cgroup = kernel.cgroup.hierarchy_path().display().to_string();
    let mut services = Services::start(ServicesSetup {
        id: &id,
        run_dir: &run_dir,
        user: &user,
        pipeline,
        source,
        telemetry,
        log_path: &log_path,
        session_dir: &dir,
        freezer: Arc::new(crate::freezer::Freezer::new(
            kernel.cgroup.path().join("cgroup.freeze"),
        )),
        session_cgroup: &session_cgroup,
        log_prompts,
        approvals,
        workspace: sandbox.workspace.clone(),
        protected: protected.clone(),
        policy: policy.clone(),
        allowlist: kernel.allowlist.clone(),
        proxy_sockets,
        upstreams: network.upstreams,
        ttl_floor: network.ttl_floor,
        dns_budget: network.dns_budget,
        requirement_paths,
        credentials: SessionCredentials {
            helper: crate::credentials::helper::Helper::new(std::mem::take(&mut handed.helper)),
            inject: credential_proxy.map(|l| (std::mem::take(&mut handed.inject), l)),
            upstream_ca: credentials.upstream_ca.clone(),
            ca_dir: PathBuf::from(crate::agent_api::SOCKET_DIR),
        },
        hangup: hangup.clone(),
        passed_terminal: client_link.is_some(),
    })?;
    let started = Instant::now();
    phases.done("services");
    let mut signals = Signals::new()?;
    let api_socket = services.agent_api.path.clone();
    let credential_env = handed.launch_env(services.ca_file(), git_helper);
    let mut env: Vec<(&str, &std::ffi::OsStr)> =
        vec![(warden_agent_api::SOCKET_ENV, api_socket.as_os_str())];
    env.extend(
        agent_env
            .set
            .iter()
            .chain(credential_env.iter())
            .map(|(k, v)| (k.as_str(), v.as_os_str())),
    );
    let spec = launch_spec(
        &user,
        sandbox.mode,
        LaunchPaths {
            write_roots: sandbox.write_roots,
            denied: protected,
            read_only: sandbox.read_only_paths,
            socket_dir: kernel.socket_dir.path(),
            allowed_sockets: &allowed_paths,
            vcs: &vcs,
        },
        policy.allow_icmp,
    );
    let gate = GateSetup {
        tokens: kernel.exec_tokens.take().expect("taken once"),
        policy: sandbox.exec_policy,
        home: user.home.clone(),
        launcher_pid: None,
        session_cgroup,
    };
    let start = supervise::Start {
        command: &command,
        user: &user,
        spec: &spec,
        env: &env,
        env_removed: &env_removed,
        base_env: client_link.is_some().then_some(inherited.as_slice()),
        gate,
        triage_end,
        client: client_signals,
        hangup,
    };
    let ending = supervise(
        start,
        &kernel.cgroup,
        &mut services,
        &mut signals,
        &mut phases,
    )
    .await?;
    phases.done("command");

    let emptied = kernel.empty()?;
    phases.done("empty");
    let stopped = services
        .stop(&emptied, matches!(ending, Ending::LogFailed(_)))
        .await;
    phases.done("services stop");
    let mut end = match ending {
        Ending::LogFailed(err) => {
            kernel.release(registration)?;
            return Err(err.context("the audit log failed; the session was killed"));
        }
        Ending::Ended(end) => end,
    };
    let finished = stopped
        .finished
        .expect("drained when the log did not fail")?;
    end.killed += emptied.killed;
    end.duration_ms = started.elapsed().as_millis() as u64;
    end.lost = finished.lost_total;
    let last = write_end(finished.writer, end, &kernel.cgroup, stopped.dns_evicted)?;
    if let Some(mut live) = finished.live {
        last.iter().for_each(|r| live.show(r));
    }
    let status = match last.last().map(|r| &r.event) {
        Some(Event::SessionEnd(e)) => e.status,
        _ => unreachable!("write_end writes session.end last"),
    };
    phases.done("end records");
    kernel.release(registration)?;
    phases.done("release");
    // Last: the session is over and deregistered (recovery must not end it again) while the
    // exporter gets its grace.
    if let Some(t) = stopped.telemetry {
        t.finish(&id, quiet).await;
        phases.done("telemetry");
    }
    Ok(status)
}

/// The inherited variables the agent does not get: the socket variables, the names that look
/// secret (unless passed on), those the requirements scrub, and names that are not UTF-8
/// (which nothing can judge).
fn removed_from_inheritance(
    inherited: &[(OsString, OsString)],
    sockets: Vec<String>,
    env: &warden_requirements::constrain::EnvironmentSettings,
) -> Vec<OsString> {
    let passed = |k: &str| env.pass.iter().any(|p| p.value.matches(k));
    let scrubbed = |k: &str| env.scrub.iter().any(|s| s.value.matches(k));
    let names = || inherited.iter().filter_map(|(k, _)| k.to_str());
    let mut removed: Vec<OsString> = sockets.into_iter().map(OsString::from).collect();
    removed.extend(
        warden_policy::environment::secret_names(names().filter(|k| !passed(k)))
            .into_iter()
            .map(OsString::from),
    );
    removed.extend(names().filter(|k| scrubbed(k)).map(OsString::from));
    removed.extend(
        inherited
            .iter()
            .filter(|(k, _)| k.to_str().is_none())
            .map(|(k, _)| k.clone()),
    );
    removed.sort();
    removed.dedup();
    removed
}

/// Ends the sessions whose supervisor died (their processes are still confined).
fn end_orphans(run_dir: &Path) {
    for orphan in recovery::recover(run_dir) {
        eprintln!(
            "warden: ended session {} left by a supervisor that died ({} processes killed){}",
            orphan.id,
            orphan.killed,
            orphan.error.map(|e| format!(": {e}")).unwrap_or_default()
        );
    }
}

fn plan_vcs(
    sandbox: &SandboxOptions,
    user: &TargetUser,
) -> anyhow::Result<vcs_protection::Protection> {
    if sandbox.mode != SandboxMode::WorkspaceWrite || !sandbox.protect_vcs_metadata {
        return Ok(vcs_protection::Protection::default());
    }
    let owner = vcs_protection::Owner {
        uid: user.uid,
        gid: user.gid,
        groups: user.groups.clone(),
    };
    vcs_protection::plan(&sandbox.write_roots, owner, &user.home).context("protecting VCS metadata")
}

/// What `session.start` says besides the kernel side's facts.
struct StartFacts<'a> {
    settings_files: Vec<String>,
    settings_warnings: Vec<String>,
    env_removed: Vec<String>,
    vcs: &'a vcs_protection::Protection,
    workspace: &'a Path,
}

fn session_start(
    command: &[OsString],
    user: &TargetUser,
    kernel: &KernelSide,
    facts: StartFacts<'_>,
) -> Event {
    let (command, command_truncated) = escape_argv(
        command.iter().map(|a| a.as_encoded_bytes()),
        warden_common::ARGV_MAX,
    );
    Event::SessionStart(Box::new(SessionStart {
        schema: SCHEMA_VERSION,
        warden_version: env!("CARGO_PKG_VERSION").into(),
        command,
        command_truncated,
        user: user.name.clone(),
        uid: user.uid,
        gid: user.gid,
        cgroup: kernel.cgroup.path().display().to_string(),
        cgroup_id: kernel.cgroup.id(),
        supervisor_pid: std::process::id(),
        hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        kernel_programs: kernel.programs.program_ids(),
        hook_tier: kernel.programs.tier().tier.as_str().into(),
        hook_tiers_unavailable: kernel.programs.tier().unavailable_lines(),
        settings_files: facts.settings_files,
        settings_warnings: facts.settings_warnings,
        layers: kernel.layers_in_force.clone(),
        missing_layers: kernel.layers_missing.clone(),
        env_removed: facts.env_removed,
        vcs_read_only: facts.vcs.read_only.iter().map(|p| escape_path(p)).collect(),
        vcs_pinned: facts.vcs.pinned.iter().map(|p| escape_path(p)).collect(),
        workspace: escape_path(facts.workspace),
        home: escape_path(&user.home),
    }))
}

/// The paths the launcher confines the command to.
struct LaunchPaths<'a> {
    write_roots: Vec<PathBuf>,
    denied: Vec<PathBuf>,
    read_only: Vec<PathBuf>,
    socket_dir: &'a Path,
    allowed_sockets: &'a [PathBuf],
    vcs: &'a vcs_protection::Protection,
}

fn launch_spec(
    user: &TargetUser,
    mode: SandboxMode,
    paths: LaunchPaths<'_>,
    allow_icmp: bool,
) -> LaunchSpec {
    let mut write_roots = paths.write_roots;
    // The agent's own sockets go there (its $XDG_RUNTIME_DIR).
    write_roots.push(paths.socket_dir.to_path_buf());
    let mounts: Vec<MountOp> = std::iter::once(MountOp::SocketDir {
        path: paths.socket_dir.to_path_buf(),
        uid: user.uid,
        gid: user.gid,
    })
    .chain(
        unix_sockets::hidden_dirs(user.uid, paths.allowed_sockets)
            .into_iter()
            .map(|path| MountOp::Hide { path }),
    )
    .chain(paths.vcs.mounts())
    .collect();
    LaunchSpec {
        uid: user.uid,
        gid: user.gid,
        groups: user.groups.clone(),
        mode,
        write_roots,
        denied_paths: paths.denied,
        read_only_paths: paths.read_only,
        supervisor_pid: std::process::id(),
        allow_icmp,
        mounts,
    }
}

/// The last records: what limits refused, then `session.end` with the log's counts; synced.
fn write_end(
    mut writer: AuditWriter,
    mut end: SessionEnd,
    cgroup: &SessionCgroup,
    dns_evicted: u64,
) -> anyhow::Result<Vec<Record>> {
    let mut written = Vec::new();
    if let Some((hits, limit)) = cgroup.pids_limit_hits()
        && hits > 0
    {
        written.push(writer.append(
            clock::boot_ns(),
            Event::LimitReached(LimitReached {
                resource: "pids".into(),
                limit,
                hits,
            }),
        )?);
    }
    if dns_evicted > 0 {
        written.push(writer.append(
            clock::boot_ns(),
            Event::LimitReached(LimitReached {
                resource: dns_budget::EVICTION_RESOURCE.into(),
                limit: dns_budget::MAX_DOMAINS.to_string(),
                hits: dns_evicted,
            }),
        )?);
    }
    end.records = writer.records();
    written.push(writer.append(clock::boot_ns(), Event::SessionEnd(end))?);
    writer.sync()?;
    Ok(written)
}
