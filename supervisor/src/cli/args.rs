//! Every command, option and flag group of `warden`, declared once (clap derive); the
//! commands themselves are in the sibling modules.
use std::{ffi::OsString, path::PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use warden::{
    kernel::hook_tier::TierChoice, log_view, network::policy::NetworkMode, recovery, replay,
    settings,
};
use warden_requirements::{
    CliOverrides, bundle, layers,
    values::{
        BacklogPolicy, Cidr, ConfigPath, DnsUpstream, DomainPattern, HttpUrl, OtlpHeader,
        OtlpProtocol, SandboxMode,
    },
};

/// Warden runs a command (typically an AI coding agent) in a session that the kernel watches:
/// every exec, fork and exit of its whole process tree is recorded in an audit log.
#[derive(Parser)]
#[command(version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log filter for Warden's own diagnostics (e.g. `info`, `warden=debug`). Also RUST_LOG.
    #[arg(long, global = true, env = "WARDEN_LOG", default_value = "warn")]
    pub log: String,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run CMD in a new supervised session (CMD runs as the invoking user).
    ///
    /// As root, CMD runs as the user who invoked sudo (SUDO_UID/SUDO_GID), or as --user. As
    /// another user, the Warden service (wardend) starts the session, if the requirements let
    /// this user (`warden status` and docs/service.md); flags that are root's to choose
    /// (--user, --state-dir, --requirements, --hook-tier...) are refused then. The terminal
    /// is passed through. Warden exits with CMD's status, or 128+N if CMD was killed by signal
    /// N. When CMD exits, every process it left behind is killed. SIGTERM, SIGHUP, or SIGINT
    /// sent to Warden (not the terminal's Ctrl-C, which goes to CMD) ends the session.
    ///
    /// The audit log is written to STATE_DIR/sessions/<session id>/events.jsonl.
    Run(RunArgs),
    /// Print a recorded session: its process tree and its records.
    Events(EventsArgs),
    /// Replay a recorded session for an incident responder: its process tree, a timeline,
    /// what one process reached; filters; JSON; verify the log; send it to a collector again.
    Replay(ReplayArgs),
    /// Send the telemetry of finished sessions that the collector has not acknowledged yet
    /// (it was down, or a supervisor died), to the configured collector. For a timer or cron;
    /// `warden run` does it too when it starts. Exits 1 if some is still pending.
    Export(ExportArgs),
    /// Check what Warden needs from this machine; exits 1 if something required is missing.
    ///
    /// Each line is a kernel feature, tried for real (programs are loaded and attached). A
    /// layer the kernel lacks says what Warden does instead. A program the verifier refuses is
    /// shown by its cause; its whole log is saved under STATE_DIR/verifier/.
    Doctor(DoctorArgs),
    /// Requirements: lint files, show the effective set, sign and verify cloud bundles.
    #[command(subcommand)]
    Requirements(RequirementsCommand),
    /// Answer the approval requests of running sessions (from another terminal).
    ///
    /// Root, the session's user and members of the session's --approvers-group may answer;
    /// processes inside a Warden session may not (the agent cannot approve itself). A request's
    /// id (e.g. 2d3c4b5a-1: the random end of its session's id, and a counter) is unique among
    /// the running sessions.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// End sessions whose supervisor died (`warden run` also does this when it starts).
    ///
    /// Such a session stays confined until then (its network programs are pinned), but it is
    /// no longer recorded. Its processes are killed and its log gets a `session.end` record
    /// with reason `supervisor_lost`.
    Recover(RecoverArgs),
    /// The agent's credentials, kept in the OS keyring and handed to sessions the narrowest
    /// way (see docs/credentials.md).
    ///
    /// The store is the user's Secret Service collection when the session has a D-Bus
    /// session bus, the kernel's persistent keyring (keyutils) otherwise. Nothing is written
    /// to a plain file: without a keyring the command fails and says how to get one.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// Kill the requirements' agent programs (`[[service.agent_programs]]`) when they start
    /// outside a Warden session, until stopped (as root).
    ///
    /// Every exec on the machine outside a session is checked in the kernel: the listed file
    /// (by any name), a listed path as typed (scripts), and with a `sha256` a copy of that
    /// content anywhere. A match is killed before its first instruction, recorded in
    /// STATE_DIR/guard/events.jsonl (`guard.killed`), and the terminal it was started from is
    /// told how to start it under Warden. SIGHUP reads the requirements again; SIGTERM or
    /// SIGINT stops the guard. The guard is pinned in the kernel: if this process dies, the
    /// kernel goes on killing, and the next `warden guard` takes it over and records what was
    /// killed meanwhile.
    Guard(GuardArgs),
    /// Tell recorded sessions' honest work from what a coding task would not do: credential
    /// reads and their exfiltration, persistence, download-and-execute, reverse shells,
    /// install scripts reaching the network, DNS tunnelling, mass deletion, probing.
    ///
    /// Each log's hash chain is checked first (a damaged log is said, and its findings rest on
    /// records that may have been changed). Each finding has a severity, MITRE ATT&CK
    /// techniques, a one-line narrative and its evidence as seq ranges of the log (`warden
    /// events ID --view json`). Besides the built-in detections: the workspace's baseline
    /// (what earlier sessions of it did; an ordinary session is learnt into it), Sigma rules
    /// (`--rules`), an AI reviewer (`--reviewer-command`). The same built-in detections run
    /// live in every session (`finding` records). Exits 1 when a finding is high or critical,
    /// 0 otherwise.
    Triage(TriageArgs),
    /// The live sessions: id, user, supervisor pid, start, workspace and command. Root sees
    /// every session; another user sees their own, through the Warden service (wardend).
    Status(StatusArgs),
    /// The Warden service (`wardend`, what systemd's wardend.service runs): starts sessions
    /// for the users the requirements allow (`service.allowed_users`, `service.allowed_groups`)
    /// when they type `warden run` without root, each as a `warden run` of its own that
    /// outlives a restart of the service.
    ///
    /// Listens on the socket systemd passes (socket activation) or binds SOCKET itself. Ends
    /// sessions whose supervisor died, at start. Also runs the agent guard from the
    /// requirements' `[[service.agent_programs]]` (left in the kernel when the daemon stops),
    /// and sends telemetry a collector missed. See docs/service.md.
    Daemon(DaemonArgs),
    /// Write the man pages (one per command) and shell completions (bash, zsh, fish) into
    /// DIR/man1 and DIR/completions: what the package installs.
    #[command(hide = true)]
    Manuals {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub socket: SocketPath,
    #[command(flatten)]
    pub run_dir: RunDir,
}

#[derive(clap::Args)]
pub struct DaemonArgs {
    /// How often telemetry that the collector missed (`warden export`'s work) is sent to the
    /// requirements' collector.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub export_interval_secs: u64,
    #[command(flatten)]
    pub socket: SocketPath,
    #[command(flatten)]
    pub run_dir: RunDir,
    #[command(flatten)]
    pub state: StateDir,
    #[command(flatten)]
    pub requirements: RequirementsPaths,
}

#[derive(clap::Args)]
pub struct SocketPath {
    /// The Warden service's socket.
    #[arg(long, env = warden::service::protocol::SOCKET_ENV, default_value = warden::service::protocol::SOCKET, value_name = "SOCKET")]
    pub socket: PathBuf,
}

#[derive(clap::Args)]
pub struct TriageArgs {
    /// Session id (or a unique prefix of it), `last`, a session directory, or a log file.
    #[arg(required_unless_present_any = ["all", "since"], conflicts_with_all = ["all", "since"])]
    pub session: Option<String>,
    /// Every session recorded in the state directory.
    #[arg(long)]
    pub all: bool,
    /// The sessions started at or after T: an RFC 3339 time (2026-12-07T09:00:00Z), a date
    /// (2026-12-07, UTC) or an age (30m, 12h, 7d).
    #[arg(long, value_name = "T", conflicts_with = "all")]
    pub since: Option<String>,
    /// Also run the Sigma rules in DIR (`*.yml`, `*.yaml`, recursively; Linux
    /// process_creation, file_event, file_delete, file_access, network_connection and dns_query
    /// rules, on the field mapping of docs/triage.md). One broken rule refuses the set.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Write the report as one self-contained HTML page (process tree, timeline, activity,
    /// evidence records) to FILE. One session only.
    #[arg(long, value_name = "FILE", requires = "session")]
    pub html: Option<PathBuf>,
    /// Ask CMD (a program and its arguments, split at spaces; no shell) for a second opinion
    /// on the findings: JSON on its stdin, JSON on its stdout (docs/triage.md "AI reviewer").
    /// It may raise a finding's severity and explain it, never lower or remove one.
    #[arg(long, value_name = "CMD")]
    pub reviewer_command: Option<String>,
    /// How long the reviewer may take before its findings are marked "needs review".
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 120,
        requires = "reviewer_command"
    )]
    pub reviewer_timeout: u64,
    /// Do not compare with, nor learn into, the workspace's baseline (STATE_DIR/baselines).
    #[arg(long)]
    pub no_baseline: bool,
    /// A person judged this session benign: learn it into its baseline, findings and all (how
    /// a stable baseline comes to know a new tool or domain).
    #[arg(long, requires = "session", conflicts_with = "no_baseline")]
    pub accept: bool,
    /// The report as JSON.
    #[arg(long, conflicts_with = "ocsf")]
    pub json: bool,
    /// Each finding as an OCSF Detection Finding (class 2004, OCSF 1.1), one JSON object per
    /// line, for a SIEM.
    #[arg(long)]
    pub ocsf: bool,
    #[command(flatten)]
    pub state: StateDir,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Run CMD as this user (name or uid) instead of the invoking user.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Also show the session's records on stderr as they are written, in VIEW (`actions` when
    /// it is left out: `--events`). The audit log is the same either way.
    #[arg(
        long,
        value_enum,
        value_name = "VIEW",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "actions"
    )]
    pub events: Option<warden::live_view::EventsView>,
    /// Do not print the session id line at start.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub state: StateDir,
    /// cgroup v2 mount point (default: found in /proc/self/mountinfo).
    #[arg(long, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Box<SettingsFlags>,
    #[command(flatten)]
    pub run_dir: RunDir,
    /// Most processes and threads the session may have at once (a fork bomb stops there).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_pids: u32,
    #[command(flatten)]
    pub approvals: ApprovalFlags,
    /// Size of the kernel-to-Warden event ring buffer in KiB (a power of two, at least 4).
    /// Events that do not fit are counted and logged as `events.lost`.
    #[arg(long, value_name = "KIB", default_value_t = 16384, value_parser = parse_ring_kib)]
    pub ring_buffer_kib: u32,
    /// With telemetry: how long, after the command ends, Warden keeps sending what the
    /// collector has not acknowledged before it leaves the rest to `warden export`.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub export_grace_secs: u64,
    /// How the kernel programs hook file calls: `auto` takes the best this kernel gives
    /// (bpf_lsm: fexit observation and in-kernel denial by BPF LSM; fentry: fexit
    /// observation; tracepoint: the syscall tracepoints, which slow every process of the
    /// machine down while a session runs). Naming a tier refuses to start without it.
    /// `warden doctor` shows which tiers this kernel gives.
    #[arg(long, value_enum, value_name = "TIER", default_value_t = TierChoice::Auto)]
    pub hook_tier: TierChoice,
    /// Pass this environment variable on although its name says it holds a secret
    /// (`OPENAI_API_KEY` for an agent that needs it). Repeatable. Without it, variables such
    /// as `*_TOKEN`, `*_API_KEY`, `*_SECRET*` and `*PASSWORD*` do not reach the command.
    /// (Also `pass_env` under `[credentials]` in the user config; requirements may scrub
    /// names that nothing passes on: `credentials.scrub_env`.)
    #[arg(long = "pass-env", value_name = "NAME")]
    pub pass_env: Vec<warden_requirements::values::EnvPattern>,
    /// Hand the stored credential NAME to the session, the way it was added with (inject:
    /// the agent gets a placeholder that Warden swaps on the way to its hosts; helper: git's
    /// credential helper; env: a variable). Repeatable. See `warden credentials --help`.
    #[arg(long = "credential", value_name = "NAME")]
    pub credentials: Vec<String>,
    #[command(flatten)]
    pub credential_store: StoreFlag,
    /// Trust only this CA (PEM) for the servers behind injected credentials (default: the
    /// system's CAs), e.g. a provider reached through a private PKI.
    #[arg(long, value_name = "FILE")]
    pub credential_ca: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
    /// Started by wardend: the client's connection (signals in, the exit status out).
    #[arg(long, hide = true, value_name = "FD", requires = "handoff_fd")]
    pub client_fd: Option<i32>,
    /// Started by wardend: the client's environment and user configuration.
    #[arg(long, hide = true, value_name = "FD", requires = "client_fd")]
    pub handoff_fd: Option<i32>,
    #[command(flatten)]
    pub socket: SocketPath,
}

#[derive(clap::Args)]
pub struct GuardArgs {
    #[command(flatten)]
    pub state: StateDir,
    #[command(flatten)]
    pub requirements: RequirementsPaths,
    /// The cgroup v2 directory sessions are made under, as given to `warden run
    /// --cgroup-root` (default: the cgroup2 mount). Processes in its `warden/` are in sessions.
    #[arg(long, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    /// When stopped, leave the guard in the kernel (it goes on killing, unrecorded, until the
    /// next `warden guard` takes it over) instead of removing it.
    #[arg(long)]
    pub keep_pinned: bool,
}

#[derive(clap::Args)]
pub struct EventsArgs {
    /// Session id (or a unique prefix of it), `last`, a session directory, or a log file.
    pub session: String,
    /// What to print.
    #[arg(long, value_enum, default_value_t = log_view::View::Both)]
    pub view: log_view::View,
    /// Shorthand for --view json.
    #[arg(long, conflicts_with = "view")]
    pub json: bool,
    #[command(flatten)]
    pub state: StateDir,
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Session id (or a unique prefix of it), `last`, a session directory, or a log file.
    pub session: String,
    #[arg(long, value_enum, default_value_t = replay::ReplayView::Timeline)]
    pub view: replay::ReplayView,
    /// Shorthand for --view json.
    #[arg(long, conflicts_with = "view")]
    pub json: bool,
    #[command(flatten)]
    pub filter: replay::Filter,
    /// Check the log's hash chain instead: names the line and seq of each changed,
    /// removed or reordered record, a truncation or a partial line; exits 1 if damaged.
    #[arg(long)]
    pub verify: bool,
    /// Send the recorded session to this OTLP collector (again), instead of printing it.
    #[arg(long, value_name = "URL")]
    pub otlp: Option<String>,
    #[arg(long, value_parser = otlp_protocol(), default_value_t = OtlpProtocol::Grpc, requires = "otlp")]
    pub protocol: OtlpProtocol,
    /// A header for --otlp, NAME=VALUE. Repeatable.
    #[arg(long = "header", value_name = "NAME=VALUE", requires = "otlp")]
    pub headers: Vec<OtlpHeader>,
    /// Trust only this CA (PEM) for --otlp.
    #[arg(long, value_name = "FILE", requires = "otlp")]
    pub ca: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateDir,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Give up on a session after trying this long.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout_secs: u64,
    #[command(flatten)]
    pub state: StateDir,
    #[command(flatten)]
    pub telemetry: TelemetryFlags,
    /// The user configuration file [default: ~/.config/warden/config.toml].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub requirements: RequirementsPaths,
}

#[derive(clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub state: StateDir,
}

#[derive(clap::Args)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub run_dir: RunDir,
}

/// When the agent wants to leave its sandbox (a `prompt` exec rule, a domain no rule names,
/// under `untrusted` any command not known to be safe), the exec or the DNS answer is held
/// until someone decides: with the reviewer `user`, a person at this terminal (a prompt:
/// approve once, for the session, or deny) or with `warden approvals` from another one; with
/// `auto-review`, a risk classifier approves low risk, refuses critical risk and sends the
/// rest to the reviewer command (when the requirements name one) or to a person; with
/// `external`, the requirements' reviewer command. No answer in time denies.
#[derive(clap::Args)]
pub struct ApprovalFlags {
    /// untrusted (only known-safe commands run without asking) | on-request (default: ask
    /// when an action leaves the sandbox) | never (never ask; what needs approval is denied).
    #[arg(long, value_name = "POLICY")]
    pub approval_policy: Option<warden_requirements::values::ApprovalPolicy>,
    /// user (default) | auto-review | external.
    #[arg(long, value_name = "REVIEWER")]
    pub reviewer: Option<warden_requirements::values::Reviewer>,
    /// How long a person has to answer before the request is denied.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub approval_timeout_secs: u64,
    /// How long the reviewer command has to answer before the request is denied.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub reviewer_timeout_secs: u64,
    /// Nobody will answer (no terminal prompt, no `warden approvals`): what needs a person's
    /// approval is denied at once.
    #[arg(long)]
    pub unattended: bool,
    /// Members of GROUP may answer this session's requests with `warden approvals`.
    #[arg(long, value_name = "GROUP")]
    pub approvers_group: Option<String>,
}

#[derive(Subcommand)]
pub enum ApprovalsCommand {
    /// List the requests waiting for an answer in every running session.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        run_dir: RunDir,
    },
    /// Approve request ID, exactly as `list` shows it: once, or with --session for the rest of
    /// the session (identical requests are then approved without asking). An ID that several
    /// sessions claim is refused, naming them, and nothing is answered.
    Approve {
        id: String,
        #[arg(long)]
        session: bool,
        /// Recorded with the decision.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        run_dir: RunDir,
    },
    /// Deny request ID, exactly as `list` shows it (an ID several sessions claim is refused).
    Deny {
        id: String,
        /// Recorded with the decision.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        run_dir: RunDir,
    },
    /// The terminal prompt's helper (started by `warden run`).
    #[command(hide = true)]
    Prompt {
        /// The terminal to ask at.
        #[arg(long, value_name = "PATH")]
        tty: PathBuf,
    },
}

/// What the session may do. Every value is checked against the requirements (cloud bundle,
/// /etc/warden/managed.d/*.toml, /etc/warden/requirements.toml), which users cannot loosen;
/// a value outside them is an error naming the requirement and where it is set. Values come
/// from the user configuration (~/.config/warden/config.toml of the user the command runs as)
/// and these flags, which win over it.
///
/// The sandbox: no_new_privs, Landlock (writes only beneath the write roots; protected paths
/// such as ~/.ssh, ~/.aws, ~/.gnupg, browser profiles and Warden's own files neither readable
/// nor writable), a seccomp filter (ptrace, bpf, mounts, modules, new user namespaces,
/// io_uring, raw sockets and signals to Warden refused), and an exec gate: every exec is
/// checked against the exec rules before it happens.
///
/// The network: names resolve through Warden's DNS proxy; an address is reachable only if an
/// allowed name resolved to it (for the answer's TTL, at least the TTL floor), an allowed CIDR
/// holds it, or it is loopback on an allowed port. Everything else fails with EPERM, and
/// every decision is recorded with the rule that made it.
#[derive(clap::Args)]
pub struct SettingsFlags {
    /// read-only | workspace-write (default) | danger-full-access.
    #[arg(long, value_name = "MODE")]
    pub sandbox_mode: Option<SandboxMode>,
    /// The workspace, writable in workspace-write mode. Default: the current directory.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Another writable directory (workspace-write mode). Repeatable.
    #[arg(long = "write-root", value_name = "DIR")]
    pub write_roots: Vec<ConfigPath>,
    /// Another protected path (neither readable nor writable). Repeatable.
    #[arg(long = "deny-read", value_name = "PATH")]
    pub deny_reads: Vec<ConfigPath>,
    /// An exec rule, DECISION=COMMAND: `forbidden=git push`, `prompt=npm publish`,
    /// `allow=cargo`. The strictest matching rule decides; `prompt` holds the exec until it
    /// is approved (see --reviewer). Repeatable.
    #[arg(long = "exec-rule", value_name = "RULE", value_parser = settings::parse_exec_rule)]
    pub exec_rules: Vec<warden_requirements::values::ExecRule>,
    /// Leave out the built-in rules for dangerous commands (rm -rf /, sudo, mkfs, dd to a
    /// device, git push --force, curl | sh, ...).
    #[arg(long)]
    pub no_default_exec_rules: bool,
    /// Allow resolving NAME and reaching its addresses; `*.example.com` allows every name
    /// below example.com (not example.com itself). Repeatable.
    #[arg(long = "allow-domain", value_name = "NAME")]
    pub allow_domains: Vec<DomainPattern>,
    /// Refuse NAME (same patterns); a deny always wins over an allow. Repeatable.
    #[arg(long = "deny-domain", value_name = "NAME")]
    pub deny_domains: Vec<DomainPattern>,
    /// Allow every address in CIDR (10.0.0.0/8, 2001:db8::/32, or one address). Repeatable.
    #[arg(long = "allow-cidr", value_name = "CIDR")]
    pub allow_cidrs: Vec<Cidr>,
    /// Allow connecting to PORT on loopback addresses (none by default). Repeatable.
    #[arg(long = "loopback-port", value_name = "PORT")]
    pub loopback_ports: Vec<u16>,
    /// Allow connecting to the pathname UNIX socket PATH, a host service outside the session
    /// (none by default; the session's own sockets live in $XDG_RUNTIME_DIR). Canonical
    /// absolute paths outside the write roots only. Repeatable.
    #[arg(long = "allow-unix-socket", value_name = "PATH")]
    pub allow_unix_sockets: Vec<ConfigPath>,
    /// Allow ICMP echo (ping) to the addresses the rest of the policy allows (resolved
    /// allowed names, allowed CIDRs); refused by default, with every other ICMP socket.
    #[arg(long)]
    pub allow_icmp: bool,
    /// Leave out the built-in allowed domains (package registries and code hosts).
    #[arg(long)]
    pub no_default_domains: bool,
    /// Upstream DNS server for allowed names (IP or IP:port), repeatable. Default: the
    /// nameservers of /etc/resolv.conf.
    #[arg(long = "dns-upstream", value_name = "ADDR")]
    pub dns_upstreams: Vec<DnsUpstream>,
    /// Shortest time, in seconds, that a resolved address stays allowed (default 60).
    #[arg(long, value_name = "SECS")]
    pub dns_ttl_floor_secs: Option<u32>,
    /// `enforce` refuses what the allowlist does not name; `observe` only records it.
    #[arg(long, value_parser = network_mode(), default_value_t = NetworkMode::Enforce)]
    pub network: NetworkMode,
    #[arg(skip)]
    pub approval_policy: Option<warden_requirements::values::ApprovalPolicy>,
    #[arg(skip)]
    pub reviewer: Option<warden_requirements::values::Reviewer>,
    /// The user configuration file [default: ~/.config/warden/config.toml of the user the
    /// command runs as].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub telemetry: TelemetryFlags,
    #[command(flatten)]
    pub requirements: RequirementsPaths,
}

/// Where the audit log is sent over OTLP (checked against the requirements, which may force
/// it). Without an endpoint nothing is sent; the log is kept either way.
#[derive(clap::Args)]
pub struct TelemetryFlags {
    /// The OTLP collector, e.g. http://127.0.0.1:4318 (http/protobuf: /v1/logs is added) or
    /// http://127.0.0.1:4317 with --otlp-protocol grpc.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<HttpUrl>,
    /// grpc | http/protobuf (default).
    #[arg(long, value_name = "PROTOCOL")]
    pub otlp_protocol: Option<OtlpProtocol>,
    /// A header sent to the collector, NAME=VALUE (e.g. authorization=Bearer ...). Repeatable.
    #[arg(long = "otlp-header", value_name = "NAME=VALUE")]
    pub otlp_headers: Vec<OtlpHeader>,
    /// Trust only this CA (PEM) for the collector's TLS certificate.
    #[arg(long = "otlp-ca", value_name = "FILE")]
    pub otlp_ca_file: Option<ConfigPath>,
    /// Most telemetry (MiB of audit log) that may wait for the collector (default 256).
    #[arg(long, value_name = "MIB")]
    pub max_export_backlog_mib: Option<u32>,
    /// At that limit: `pause` freezes the session until the backlog drains (default); `drop`
    /// skips the backlog, with an export.backlog record saying which records.
    #[arg(long, value_name = "POLICY")]
    pub export_backlog_policy: Option<BacklogPolicy>,
}

impl TelemetryFlags {
    pub fn apply(&self, o: &mut CliOverrides) {
        o.otlp_endpoint = self.otlp_endpoint.clone();
        o.otlp_protocol = self.otlp_protocol;
        o.otlp_headers = self.otlp_headers.clone();
        o.otlp_ca_file = self.otlp_ca_file.clone();
        o.max_export_backlog_mib = self.max_export_backlog_mib;
        o.export_backlog_policy = self.export_backlog_policy;
    }
}

impl SettingsFlags {
    pub fn overrides(&self) -> CliOverrides {
        let mut o = CliOverrides {
            sandbox_mode: self.sandbox_mode,
            approval_policy: self.approval_policy,
            reviewer: self.reviewer,
            allowed_domains: self.allow_domains.clone(),
            denied_domains: self.deny_domains.clone(),
            allowed_cidrs: self.allow_cidrs.clone(),
            loopback_ports: self.loopback_ports.clone(),
            allowed_unix_sockets: self.allow_unix_sockets.clone(),
            allow_icmp: self.allow_icmp.then_some(true),
            dns_upstream: self.dns_upstreams.clone(),
            dns_ttl_floor_secs: self.dns_ttl_floor_secs,
            exec_rules: self.exec_rules.clone(),
            write_roots: self.write_roots.clone(),
            denied_reads: self.deny_reads.clone(),
            ..CliOverrides::default()
        };
        self.telemetry.apply(&mut o);
        o
    }
}

/// Where requirements are read from (defaults: the system's).
#[derive(clap::Args)]
pub struct RequirementsPaths {
    /// The local requirements file.
    #[arg(long = "requirements", value_name = "FILE", default_value = layers::DEFAULT_LOCAL_FILE)]
    pub local_file: PathBuf,
    /// The managed preferences directory (*.toml, later files in lexical order win).
    #[arg(long, value_name = "DIR", default_value = layers::DEFAULT_MANAGED_DIR)]
    pub managed_dir: PathBuf,
    /// Where the last verified cloud bundle is kept.
    #[arg(long, value_name = "DIR", default_value = bundle::DEFAULT_BUNDLE_CACHE_DIR)]
    pub bundle_cache: PathBuf,
    /// Trust only this CA (PEM) for the cloud bundle's HTTPS server, e.g. a private PKI. (The
    /// bundle's own signature is checked against the pinned key either way.)
    #[arg(long, value_name = "FILE")]
    pub bundle_ca: Option<PathBuf>,
}

impl RequirementsPaths {
    /// The same paths as `warden run` flags (for the sessions the service starts).
    pub fn as_flags(&self) -> anyhow::Result<Vec<OsString>> {
        let abs = |p: &PathBuf| {
            std::path::absolute(p).with_context(|| format!("the path {}", p.display()))
        };
        let mut flags: Vec<OsString> = vec![
            "--requirements".into(),
            abs(&self.local_file)?.into(),
            "--managed-dir".into(),
            abs(&self.managed_dir)?.into(),
            "--bundle-cache".into(),
            abs(&self.bundle_cache)?.into(),
        ];
        if let Some(ca) = &self.bundle_ca {
            flags.extend(["--bundle-ca".into(), abs(ca)?.into()]);
        }
        Ok(flags)
    }

    pub fn sources(
        &self,
        user_config: settings::UserConfigSource,
    ) -> anyhow::Result<settings::Sources> {
        // Absolute, not canonical: the integrity checks must still see symlinks.
        let abs = |p: &PathBuf| {
            std::path::absolute(p).with_context(|| format!("the path {}", p.display()))
        };
        Ok(settings::Sources {
            layers: warden_requirements::LayerPaths {
                managed_dir: abs(&self.managed_dir)?,
                local_file: abs(&self.local_file)?,
            },
            bundle_cache: abs(&self.bundle_cache)?,
            bundle_ca: self.bundle_ca.clone(),
            user_config,
        })
    }
}

#[derive(Subcommand)]
pub enum RequirementsCommand {
    /// Parse and validate requirements files (a linter for CI); exits 1 if one is invalid.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print every requirement key, its value and the layer, file and line it came from.
    Show {
        /// Accepted for scripts written when other views were planned: the merged view is
        /// the only one.
        #[arg(long, hide = true)]
        effective: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        paths: RequirementsPaths,
    },
    /// Make an ed25519 key pair for signing bundles: PREFIX.key and PREFIX.pub.
    Keygen {
        #[arg(value_name = "PREFIX")]
        prefix: PathBuf,
    },
    /// Sign a bundle with a secret key: writes BUNDLE.sig.
    Sign {
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        bundle: PathBuf,
    },
    /// Verify BUNDLE and BUNDLE.sig against a public key (signature, version, expiry).
    Verify {
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        bundle: PathBuf,
        /// Also cache the verified bundle here, for sessions to use (refuses a downgrade of
        /// the version already cached).
        #[arg(long, value_name = "DIR")]
        store: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub struct RunDir {
    /// Where live sessions register (so that one left by a dead supervisor can be ended, and
    /// `warden approvals` finds them).
    #[arg(long, env = "WARDEN_RUN_DIR", default_value = recovery::RUN_DIR, value_name = "DIR")]
    pub run_dir: PathBuf,
}

#[derive(clap::Args)]
pub struct StateDir {
    /// Where sessions are recorded.
    #[arg(
        long,
        env = "WARDEN_STATE_DIR",
        default_value = "/var/lib/warden",
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,
}

pub fn parse_ring_kib(s: &str) -> Result<u32, String> {
    let kib: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if kib < 4 || !kib.is_power_of_two() || kib > 1 << 20 {
        return Err(format!("{kib} is not a power of two between 4 and 1048576"));
    }
    Ok(kib)
}

/// `--network`: the modes by their own names.
fn network_mode() -> impl clap::builder::TypedValueParser<Value = NetworkMode> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(NetworkMode::ALL.iter().map(|m| m.as_str()))
        .map(|name| name.parse().expect("one of the listed modes"))
}

/// `--protocol`: the protocols by their own names (`http` also names http/protobuf).
fn otlp_protocol() -> impl clap::builder::TypedValueParser<Value = OtlpProtocol> {
    use clap::builder::{PossibleValue, TypedValueParser as _};
    clap::builder::PossibleValuesParser::new(OtlpProtocol::ALL.iter().map(|p| match p {
        OtlpProtocol::HttpProtobuf => PossibleValue::new(p.as_str()).alias("http"),
        OtlpProtocol::Grpc => PossibleValue::new(p.as_str()),
    }))
    .map(|name| match name.as_str() {
        "http" => OtlpProtocol::HttpProtobuf,
        name => name.parse().expect("one of the listed protocols"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_by_their_wire_names() {
        for (given, want) in [
            ("grpc", OtlpProtocol::Grpc),
            ("http/protobuf", OtlpProtocol::HttpProtobuf),
            ("http", OtlpProtocol::HttpProtobuf),
        ] {
            let cli = Cli::try_parse_from([
                "warden",
                "replay",
                "last",
                "--otlp",
                "u",
                "--protocol",
                given,
            ])
            .unwrap_or_else(|e| panic!("{given}: {e}"));
            let Command::Replay(r) = cli.command else {
                panic!("not replay")
            };
            assert_eq!(r.protocol, want, "{given}");
        }
        assert!(
            Cli::try_parse_from([
                "warden",
                "replay",
                "last",
                "--otlp",
                "u",
                "--protocol",
                "udp"
            ])
            .is_err()
        );
        for mode in NetworkMode::ALL {
            let cli =
                Cli::try_parse_from(["warden", "run", "--network", mode.as_str(), "--", "true"])
                    .unwrap_or_else(|e| panic!("{mode}: {e}"));
            let Command::Run(r) = cli.command else {
                panic!("not run")
            };
            assert_eq!(r.settings.network, *mode);
        }
    }
}

#[derive(clap::Subcommand)]
pub enum CredentialsCommand {
    /// Store a credential. The value is read from standard input (without echo on a
    /// terminal), never from the command line, where other users could read it.
    ///
    /// Example: `printf %s "$KEY" | warden credentials add openai --provider openai
    /// --host api.openai.com --env OPENAI_API_KEY`
    Add(CredentialsAddArgs),
    /// List the stored credentials: name, provider, delivery, hosts, login, expiry. Never
    /// the values.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreFlag,
    },
    /// Show one credential's metadata; its value only with --reveal.
    Show {
        name: String,
        /// Print the value too.
        #[arg(long)]
        reveal: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreFlag,
    },
    /// Delete a credential from the keyring.
    Remove {
        name: String,
        #[command(flatten)]
        store: StoreFlag,
    },
    /// Check that the store answers and that each credential (or NAME) can be read, is not
    /// expired and is within the requirements' login pin. Exits 1 if one is not.
    Test {
        name: Option<String>,
        #[command(flatten)]
        store: StoreFlag,
        #[command(flatten)]
        paths: RequirementsPaths,
        #[command(flatten)]
        state: StateDir,
    },
    /// For `warden run`: prints the named credentials as JSON, run as the session's user.
    #[command(hide = true)]
    SessionExport {
        #[command(flatten)]
        store: StoreFlag,
        #[arg(last = true)]
        names: Vec<String>,
    },
}

#[derive(clap::Args)]
pub struct CredentialsAddArgs {
    /// What sessions and records call it: letters, digits, '.', '_', '-'.
    pub name: String,
    /// Who issued it (e.g. openai, anthropic, github); login pins are per provider.
    #[arg(long)]
    pub provider: String,
    /// A host it is for (repeat for more). `inject` and `helper` hand it only to these.
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// inject: the agent holds a placeholder that Warden swaps on the way out (narrowest);
    /// helper: git's credential helper through the agent socket; env: a variable at launch.
    #[arg(long, default_value = "inject", value_parser = parse_delivery)]
    pub delivery: warden_credentials::Delivery,
    /// inject: the request header that carries it; the agent's placeholder is swapped
    /// wherever it is in that header (`Authorization: Bearer <placeholder>`). Claude Code and
    /// Anthropic's API use `x-api-key`.
    #[arg(long, default_value = "authorization")]
    pub header: String,
    /// env: the variable that gets the value; inject: the one that gets the placeholder.
    #[arg(long, value_name = "VAR")]
    pub env: Option<String>,
    /// How it was obtained: api-key, or a login method (e.g. chatgpt, oauth) whose value is
    /// a signed token that requirements may pin to a workspace.
    #[arg(long, default_value = "api-key")]
    pub login_method: String,
    /// The workspace or organisation it belongs to.
    #[arg(long)]
    pub workspace: Option<String>,
    /// When it stops working (RFC 3339, e.g. 2027-01-31T00:00:00Z); sessions refuse it after.
    #[arg(long, value_name = "TIME")]
    pub expires: Option<String>,
    /// Overwrite a credential of the same name.
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub store: StoreFlag,
    #[command(flatten)]
    pub paths: RequirementsPaths,
    /// (Root keeps the login pin's issuer keys in STATE_DIR/jwks; others in ~/.cache/warden.)
    #[command(flatten)]
    pub state: StateDir,
}

/// Which keyring.
#[derive(clap::Args)]
pub struct StoreFlag {
    /// The keyring: auto (Secret Service when there is a session bus, else keyutils),
    /// secret-service or keyutils.
    #[arg(long = "store", value_name = "STORE", default_value = "auto", value_parser = parse_store)]
    pub choice: warden_credentials::StoreChoice,
}

fn parse_delivery(s: &str) -> Result<warden_credentials::Delivery, String> {
    s.parse().map_err(|e: warden_wire::InvalidValue| e.0)
}

fn parse_store(s: &str) -> Result<warden_credentials::StoreChoice, String> {
    use warden_credentials::StoreChoice;
    match s {
        "auto" => Ok(StoreChoice::Auto),
        s => s
            .parse()
            .map(StoreChoice::Only)
            .map_err(|e: warden_wire::InvalidValue| e.0),
    }
}
