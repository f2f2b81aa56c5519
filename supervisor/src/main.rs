use std::{ffi::OsString, path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use warden::{
    audit_log, doctor, log_view,
    network::{
        policy::{DEFAULT_ALLOWED_DOMAINS, NetworkMode, NetworkPolicy},
        upstream,
    },
    recovery, session, signals,
};
use warden_agent::spec::SandboxMode;

/// Warden runs a command (typically an AI coding agent) in a session that the kernel watches:
/// every exec, fork and exit of its whole process tree is recorded in an audit log.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter for Warden's own diagnostics (e.g. `info`, `warden=debug`). Also RUST_LOG.
    #[arg(long, global = true, env = "WARDEN_LOG", default_value = "warn")]
    log: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run CMD in a new supervised session (as root; CMD runs as the invoking user).
    ///
    /// CMD runs as the user who invoked sudo (SUDO_UID/SUDO_GID), or as --user. The terminal
    /// is passed through. Warden exits with CMD's status, or 128+N if CMD was killed by signal
    /// N. When CMD exits, every process it left behind is killed. SIGTERM, SIGHUP, or SIGINT
    /// sent to Warden (not the terminal's Ctrl-C, which goes to CMD) ends the session.
    ///
    /// The audit log is written to STATE_DIR/sessions/<session id>/events.jsonl.
    Run {
        /// Run CMD as this user (name or uid) instead of the invoking user.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Also print every event to stderr as it happens.
        #[arg(long)]
        events: bool,
        /// Do not print the session id line at start.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        state: StateDir,
        /// cgroup v2 mount point (default: found in /proc/self/mountinfo).
        #[arg(long, value_name = "DIR")]
        cgroup_root: Option<PathBuf>,
        #[command(flatten)]
        network: Box<NetworkFlags>,
        #[command(flatten)]
        sandbox: Box<SandboxFlags>,
        /// Where live sessions register (so that one left by a dead supervisor can be ended).
        #[arg(long, env = "WARDEN_RUN_DIR", default_value = recovery::RUN_DIR, value_name = "DIR")]
        run_dir: PathBuf,
        /// Most processes and threads the session may have at once (a fork bomb stops there).
        #[arg(long, value_name = "N", default_value_t = 4096)]
        max_pids: u32,
        /// Size of the kernel-to-Warden event ring buffer in KiB (a power of two, at least 4).
        /// Events that do not fit are counted and logged as `events.lost`.
        #[arg(long, value_name = "KIB", default_value_t = 16384, value_parser = parse_ring_kib)]
        ring_buffer_kib: u32,
        /// The command and its arguments.
        #[arg(required = true, last = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
    /// Print a recorded session: its process tree and its records.
    Events {
        /// Session id (or a unique prefix of it), `last`, a session directory, or a log file.
        session: String,
        /// What to print.
        #[arg(long, value_enum, default_value_t = log_view::View::Both)]
        view: log_view::View,
        /// Shorthand for --view json.
        #[arg(long, conflicts_with = "view")]
        json: bool,
        #[command(flatten)]
        state: StateDir,
    },
    /// Check what Warden needs from this machine; exits 1 if something required is missing.
    Doctor,
    /// End sessions whose supervisor died (`warden run` also does this when it starts).
    ///
    /// Such a session stays confined until then (its network programs are pinned), but it is
    /// no longer recorded. Its processes are killed and its log gets a `session.end` record
    /// with reason `supervisor_lost`.
    Recover {
        #[arg(long, env = "WARDEN_RUN_DIR", default_value = recovery::RUN_DIR, value_name = "DIR")]
        run_dir: PathBuf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SandboxFlag {
    /// Read (all but protected paths), write nothing but devices like /dev/null.
    ReadOnly,
    /// Also write in the workspace, the temp directories and --writable directories.
    WorkspaceWrite,
    /// No file-system confinement (exec rules, the syscall filter and the network allowlist
    /// still hold, and everything is still recorded).
    DangerFullAccess,
}

/// The sandbox. The command runs with no_new_privs, Landlock file-system rules, and a seccomp
/// filter: every exec is checked against the exec rules before it happens; ptrace, bpf,
/// mounts, kernel modules, new user namespaces, io_uring, raw and packet sockets and signals
/// to Warden are refused. Protected paths (~/.ssh, ~/.aws, ~/.gnupg, cloud and browser
/// credentials, Warden's own files) can be neither read nor written.
#[derive(clap::Args)]
struct SandboxFlags {
    #[arg(long, value_enum, default_value_t = SandboxFlag::WorkspaceWrite)]
    sandbox: SandboxFlag,
    /// The workspace, writable in workspace-write mode. Default: the current directory.
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Another writable directory (workspace-write mode). Repeatable.
    #[arg(long = "writable", value_name = "DIR")]
    writable: Vec<PathBuf>,
    /// Another path to protect (neither readable nor writable). Repeatable.
    #[arg(long = "deny-path", value_name = "PATH")]
    deny_paths: Vec<PathBuf>,
    /// An exec rule, DECISION=COMMAND: `forbidden=git push`, `prompt=npm publish`,
    /// `allow=cargo`. The strictest matching rule decides; `prompt` denies until an approval
    /// flow exists. Repeatable.
    #[arg(long = "exec-rule", value_name = "RULE")]
    exec_rules: Vec<warden::exec_policy::ExecRule>,
    /// Do not include the built-in rules for dangerous commands (rm -rf /, sudo, mkfs,
    /// dd to a device, git push --force, curl | sh, ...).
    #[arg(long)]
    no_default_exec_rules: bool,
}

impl SandboxFlags {
    fn into_options(self) -> anyhow::Result<session::SandboxOptions> {
        let workspace = match self.workspace {
            Some(w) => w,
            None => {
                std::env::current_dir().context("the current directory (or give --workspace)")?
            }
        };
        let workspace = std::fs::canonicalize(&workspace)
            .with_context(|| format!("workspace {}", workspace.display()))?;
        let mode = match self.sandbox {
            SandboxFlag::ReadOnly => SandboxMode::ReadOnly,
            SandboxFlag::WorkspaceWrite => SandboxMode::WorkspaceWrite,
            SandboxFlag::DangerFullAccess => SandboxMode::DangerFullAccess,
        };
        if mode == SandboxMode::WorkspaceWrite && workspace == std::path::Path::new("/") {
            anyhow::bail!(
                "the workspace would be / (the whole file system): run from a project \
                 directory, or give --workspace DIR"
            );
        }
        let mut write_roots = vec![workspace, "/tmp".into(), "/var/tmp".into()];
        write_roots.extend(self.writable);
        Ok(session::SandboxOptions {
            mode,
            write_roots,
            denied_paths: self.deny_paths,
            exec_policy: warden::exec_policy::ExecPolicy::new(
                self.exec_rules,
                !self.no_default_exec_rules,
            ),
        })
    }
}

/// The session's network allowlist. Names are resolved through Warden's DNS proxy; a
/// connection or datagram reaches an address only if an allowed name resolved to it (for the
/// answer's TTL, at least --dns-ttl-floor), an allowed CIDR contains it, or it is a loopback
/// address and an allowed loopback port. Everything else fails with EPERM, and every decision
/// is recorded with the rule that made it.
#[derive(clap::Args)]
struct NetworkFlags {
    /// Allow resolving NAME and reaching its addresses. `*.example.com` allows every name
    /// below example.com (not example.com itself). Repeatable. Added to the built-in list
    /// (package registries and code hosts) unless --no-default-domains.
    #[arg(long = "allow-domain", value_name = "NAME")]
    allow_domains: Vec<String>,
    /// Refuse NAME (same patterns); a deny always wins over an allow. Repeatable.
    #[arg(long = "deny-domain", value_name = "NAME")]
    deny_domains: Vec<String>,
    /// Allow every address in CIDR (e.g. 10.0.0.0/8, 2001:db8::/32, or one address).
    #[arg(long = "allow-cidr", value_name = "CIDR")]
    allow_cidrs: Vec<String>,
    /// Allow connecting to PORT on loopback addresses (none by default).
    #[arg(long = "allow-loopback-port", value_name = "PORT")]
    loopback_ports: Vec<u16>,
    /// Do not start from the built-in allowed domains.
    #[arg(long)]
    no_default_domains: bool,
    /// Upstream DNS server for allowed names (IP, IP:port or [IPv6]:port), repeatable.
    /// Default: the nameservers of /etc/resolv.conf.
    #[arg(long = "dns-upstream", value_name = "ADDR", value_parser = upstream::parse)]
    dns_upstreams: Vec<std::net::SocketAddr>,
    /// Shortest time, in seconds, that a resolved address stays allowed.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    dns_ttl_floor: u64,
    /// `enforce` refuses what the allowlist does not name; `observe` only records it.
    #[arg(long, value_enum, default_value_t = NetworkMode::Enforce)]
    network: NetworkMode,
}

impl NetworkFlags {
    fn into_options(self) -> anyhow::Result<session::NetworkOptions> {
        let mut policy = NetworkPolicy::new(self.network);
        if !self.no_default_domains {
            for d in DEFAULT_ALLOWED_DOMAINS {
                policy.allow_domain(d, "built-in default")?;
            }
        }
        for d in &self.allow_domains {
            policy.allow_domain(d, "--allow-domain")?;
        }
        for d in &self.deny_domains {
            policy.deny_domain(d, "--deny-domain")?;
        }
        for c in &self.allow_cidrs {
            policy.allow_cidr(c, "--allow-cidr")?;
        }
        for &p in &self.loopback_ports {
            policy.allow_loopback_port(p, "--allow-loopback-port");
        }
        let upstreams = if self.dns_upstreams.is_empty() {
            let conf = std::path::Path::new(upstream::RESOLV_CONF);
            upstream::from_resolv_conf(conf)
                .with_context(|| format!("reading {} (or give --dns-upstream)", conf.display()))?
        } else {
            self.dns_upstreams
        };
        Ok(session::NetworkOptions {
            policy,
            upstreams,
            ttl_floor: std::time::Duration::from_secs(self.dns_ttl_floor),
        })
    }
}

#[derive(clap::Args)]
struct StateDir {
    /// Where sessions are recorded.
    #[arg(
        long,
        env = "WARDEN_STATE_DIR",
        default_value = "/var/lib/warden",
        value_name = "DIR"
    )]
    state_dir: PathBuf,
}

fn parse_ring_kib(s: &str) -> Result<u32, String> {
    let kib: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if kib < 4 || !kib.is_power_of_two() || kib > 1 << 20 {
        return Err(format!("{kib} is not a power of two between 4 and 1048576"));
    }
    Ok(kib)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cli.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match dispatch(cli.command) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("warden: {}", error_chain(&e));
            ExitCode::from(125)
        }
    }
}

/// The error and its causes, skipping causes whose text the message already shows (our error
/// types name their source in their own message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

fn dispatch(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Run {
            user,
            events,
            quiet,
            state,
            cgroup_root,
            network,
            sandbox,
            run_dir,
            ring_buffer_kib,
            max_pids,
            command,
        } => {
            let network = network.into_options()?;
            let sandbox = sandbox.into_options()?;
            // Before any thread exists, so that every runtime thread inherits the mask.
            signals::block().context("blocking signals")?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(session::run(session::RunOptions {
                command,
                user,
                live: events,
                quiet,
                state_dir: state.state_dir,
                cgroup_root,
                ring_buffer_bytes: Some(ring_buffer_kib * 1024),
                run_dir,
                network,
                sandbox,
                max_pids,
            }))
        }
        Command::Events {
            session,
            view,
            json,
            state,
        } => {
            let path = log_view::locate(&session, &state.state_dir)?;
            let records = audit_log::read(&path)?;
            log_view::print(&records, if json { log_view::View::Json } else { view })?;
            Ok(0)
        }
        Command::Recover { run_dir } => {
            let ended = recovery::recover(&run_dir);
            for r in &ended {
                match &r.error {
                    None => println!("ended session {}: {} processes killed", r.id, r.killed),
                    Some(e) => println!("session {}: {e}", r.id),
                }
            }
            if ended.is_empty() {
                println!("no orphaned session");
            }
            Ok(if ended.iter().any(|r| r.error.is_some()) {
                1
            } else {
                0
            })
        }
        Command::Doctor => {
            let (table, ok) = doctor::report(&doctor::run_checks());
            print!("{table}");
            Ok(if ok { 0 } else { 1 })
        }
    }
}
