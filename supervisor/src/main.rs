use std::{ffi::OsString, path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use warden::{audit_log, doctor, log_view, session, signals};

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
            eprintln!("warden: {e:#}");
            ExitCode::from(125)
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Run {
            user,
            events,
            quiet,
            state,
            cgroup_root,
            ring_buffer_kib,
            command,
        } => {
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
        Command::Doctor => {
            let (table, ok) = doctor::report(&doctor::run_checks());
            print!("{table}");
            Ok(if ok { 0 } else { 1 })
        }
    }
}
