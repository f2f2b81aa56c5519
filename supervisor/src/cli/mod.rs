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
