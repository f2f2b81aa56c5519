//! `warden`'s command line: the definitions (`args`) and one function per command, so that
//! `main` only parses and dispatches.
pub mod args;
mod daemon;
mod export;
mod guard;
mod manuals;
mod replay;
mod run;
mod small;
mod triage;

use args::Command;

/// Runs the command; returns what `warden` exits with.
pub fn dispatch(command: Command) -> anyhow::Result<i32> {
    if prints_a_report(&command) {
        // Like other Unix tools, a report ends quietly when its reader goes away (`| head`,
        // `| grep -q`) instead of panicking on the broken pipe. Rust ignores SIGPIPE; only
        // these commands get it back: a session or the daemon must never die of a closed pipe.
        // SAFETY: restores a default disposition before any thread or pipe exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match command {
        Command::Run(args) => run::run(args),
        Command::Replay(args) => replay::replay(args),
        Command::Export(args) => export::export(args),
        Command::Events(args) => small::events(args),
        Command::Requirements(cmd) => small::requirements(cmd),
        Command::Approvals(cmd) => small::approvals(cmd),
        Command::Recover(args) => small::recover(args),
        Command::Doctor(args) => small::doctor(args),
        Command::Credentials(cmd) => small::credentials(cmd),
        Command::Triage(args) => triage::triage(args),
        Command::Status(args) => daemon::status(args),
        Command::Daemon(args) => daemon::daemon(args),
        Command::Manuals { out } => manuals::write(&out),
        Command::Guard(args) => guard::guard(args),
    }
}

/// The commands that print something and end.
fn prints_a_report(command: &Command) -> bool {
    matches!(
        command,
        Command::Events(_)
            | Command::Replay(_)
            | Command::Requirements(_)
            | Command::Doctor(_)
            | Command::Triage(_)
            | Command::Status(_)
    )
}
