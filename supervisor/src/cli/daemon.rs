//! `warden daemon` (`wardend`) and `warden status`: the command-line side of the service, which
//! knows `warden`'s flags and so decides which of them a user may give a session.
use std::ffi::OsString;

use anyhow::Context as _;
use clap::{CommandFactory as _, parser::ValueSource};
use warden::{recovery, service, settings};

use super::args::{Cli, DaemonArgs, StatusArgs};

/// `warden run` flags (clap ids) a user may give a session the service starts: what the
/// session may do, checked against the requirements like anyone's. Everything else (who it
/// runs as, where it is recorded, which requirements, the hook tier, files root would read)
/// is root's: refused, and so is any flag added later until it is listed here.
const USER_FLAGS: &[&str] = &[
    "log",
    "events",
    "quiet",
    "sandbox_mode",
    "workspace",
    "write_roots",
    "deny_reads",
    "exec_rules",
    "no_default_exec_rules",
    "allow_domains",
    "deny_domains",
    "allow_cidrs",
    "loopback_ports",
    "allow_unix_sockets",
    "allow_icmp",
    "no_default_domains",
    "dns_upstreams",
    "dns_ttl_floor_secs",
    "config",
    "otlp_endpoint",
    "otlp_protocol",
    "otlp_headers",
    "max_export_backlog_mib",
    "export_backlog_policy",
    "approval_policy",
    "reviewer",
    "approval_timeout_secs",
    "reviewer_timeout_secs",
    "unattended",
    "approvers_group",
    "pass_env",
    "credentials",
    "credential_store",
    "command",
];

pub fn daemon(args: DaemonArgs) -> anyhow::Result<i32> {
    anyhow::ensure!(
        nix::unistd::Uid::effective().is_root(),
        "the Warden service runs as root"
    );
    service::daemon::take_back(&args.run_dir.run_dir);
    let listener = service::activation::listener(&args.socket.socket)
        .with_context(|| format!("the socket {}", args.socket.socket.display()))?;
    let mut requirement_flags = args.requirements.as_flags()?;
    requirement_flags.extend([
        "--state-dir".into(),
        std::path::absolute(&args.state.state_dir)?.into(),
        "--run-dir".into(),
        std::path::absolute(&args.run_dir.run_dir)?.into(),
    ]);
    service::guard::spawn(
        args.requirements
            .sources(settings::UserConfigSource::Given(None))?,
        warden::agent_guard::Options {
            state_dir: args.state.state_dir.clone(),
            cgroup_root: None,
        },
    );
    service::delivery::spawn(
        args.state.state_dir.clone(),
        args.requirements
            .sources(settings::UserConfigSource::Given(None))?,
        std::time::Duration::from_secs(args.export_interval_secs.max(1)),
    );
    let opts = service::daemon::DaemonOptions {
        exe: std::env::current_exe()?,
        run_dir: args.run_dir.run_dir.clone(),
        requirements: args
            .requirements
            .sources(settings::UserConfigSource::Given(None))?,
        requirement_flags,
        check_args: Box::new(check_args),
    };
    service::daemon::serve(listener, opts)?;
    Ok(0)
}

/// The session's `warden` arguments: the user's, checked, with the daemon's after `run`.
fn check_args(given: &service::daemon::StartArgs) -> Result<Vec<OsString>, String> {
    let argv = std::iter::once(OsString::from("warden")).chain(given.args.iter().cloned());
    let matches = Cli::command()
        .try_get_matches_from(argv)
        .map_err(|e| e.render().to_string().trim_end().to_string())?;
    let Some(("run", run)) = matches.subcommand() else {
        return Err("the Warden service only starts sessions (`warden run`)".into());
    };
    let command = Cli::command();
    let run_command = command.find_subcommand("run").expect("warden has `run`");
    // Each flag given (the ids of flag groups are not flags).
    for arg in run_command.get_arguments() {
        let id = arg.get_id().as_str();
        if run.value_source(id) == Some(ValueSource::CommandLine) && !USER_FLAGS.contains(&id) {
            return Err(format!(
                "--{} is root's to choose and not available to sessions started through the \
                 Warden service",
                arg.get_long().unwrap_or(id)
            ));
        }
    }
    // Only `--log` may come before `run` (the one global flag).
    let at = run_position(&given.args).ok_or("expected `run` after `warden`")?;
    let mut out = given.args[..=at].to_vec();
    out.extend(given.inserted.iter().cloned());
    out.extend(given.args[at + 1..].iter().cloned());
    Ok(out)
}

fn run_position(args: &[OsString]) -> Option<usize> {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        match a.to_str() {
            Some("--log") => i += 2,
            Some(s) if s.starts_with("--log=") => i += 1,
            Some("run") => return Some(i),
            _ => return None,
        }
    }
    None
}

pub fn status(args: StatusArgs) -> anyhow::Result<i32> {
    let sessions: Vec<service::protocol::SessionView> = if nix::unistd::Uid::effective().is_root() {
        recovery::live(&args.run_dir.run_dir)
            .into_iter()
            .map(service::daemon::view)
            .collect()
    } else {
        service::client::status(&args.socket.socket)?
    };
    if args.json {
        for s in &sessions {
            println!("{}", serde_json::to_string(s)?);
        }
        return Ok(0);
    }
    if sessions.is_empty() {
        println!("no live sessions");
        return Ok(0);
    }
    println!(
        "{:<36}  {:<12} {:>8}  {:<20}  {:<30}  COMMAND",
        "SESSION", "USER", "PID", "STARTED", "WORKSPACE"
    );
    for s in &sessions {
        println!(
            "{:<36}  {:<12} {:>8}  {:<20}  {:<30}  {}",
            s.id,
            s.user,
            s.supervisor_pid,
            s.started.get(..19).unwrap_or(&s.started),
            s.workspace,
            s.command
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str]) -> Result<Vec<String>, String> {
        let given = service::daemon::StartArgs {
            args: args.iter().map(OsString::from).collect(),
            inserted: vec!["--user".into(), "1000".into()],
        };
        check_args(&given).map(|v| v.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    #[test]
    fn users_choose_what_the_session_may_do_never_what_is_roots() {
        assert_eq!(
            check(&[
                "run",
                "--events",
                "--allow-domain",
                "x.test",
                "--",
                "sh",
                "--user"
            ])
            .unwrap(),
            [
                "run",
                "--user",
                "1000",
                "--events",
                "--allow-domain",
                "x.test",
                "--",
                "sh",
                "--user"
            ]
        );
        assert_eq!(
            check(&["--log", "debug", "run", "--", "true"]).unwrap(),
            ["--log", "debug", "run", "--user", "1000", "--", "true"]
        );
        for (args, flag) in [
            (&["run", "--user", "root", "--", "true"][..], "--user"),
            (&["run", "--state-dir=/tmp/x", "--", "true"], "--state-dir"),
            (
                &["run", "--requirements", "/tmp/r.toml", "--", "true"],
                "--requirements",
            ),
            (
                &["run", "--hook-tier", "tracepoint", "--", "true"],
                "--hook-tier",
            ),
            (&["run", "--network", "observe", "--", "true"], "--network"),
            (
                &["run", "--otlp-ca", "/etc/shadow", "--", "true"],
                "--otlp-ca",
            ),
            (
                &["run", "--client-fd", "0", "--handoff-fd", "1", "--", "true"],
                "--client-fd",
            ),
        ] {
            let err = check(args).unwrap_err();
            assert!(
                err.starts_with(&format!("{flag} is root's")),
                "{args:?}: {err}"
            );
        }
        assert!(
            check(&["status"])
                .unwrap_err()
                .contains("only starts sessions")
        );
        assert!(check(&["run", "--no-such-flag", "--", "true"]).is_err());
    }
}
