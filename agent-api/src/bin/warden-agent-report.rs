//! `warden-agent-report`: the agent API from a shell, for agents written as scripts (and for
//! tests).
//!
//!   warden-agent-report prompt [TEXT]              the user's prompt (TEXT, or stdin)
//!   warden-agent-report tool-call ID [--name NAME] -- CMD [ARGS...]
//!                                                  runs CMD as tool call ID: registers this
//!                                                  process, runs CMD as its child, reports the
//!                                                  end with CMD's status, exits with it
//!   warden-agent-report tool-end ID [STATUS]       ends tool call ID
use std::{
    io::Read,
    os::unix::process::ExitStatusExt,
    process::{Command, ExitCode},
};

use warden_agent_api::{ApiError, Client};

const USAGE: &str = "usage: warden-agent-report prompt [TEXT]\n       warden-agent-report tool-call ID [--name NAME] -- CMD [ARGS...]\n       warden-agent-report tool-end ID [STATUS]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("warden-agent-report: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let err = |e: ApiError| e.to_string();
    match args.first().map(String::as_str) {
        Some("prompt") => {
            let text = match args.get(1) {
                Some(t) => t.clone(),
                None => {
                    let mut t = String::new();
                    std::io::stdin()
                        .read_to_string(&mut t)
                        .map_err(|e| format!("reading the prompt: {e}"))?;
                    t
                }
            };
            Client::from_env()
                .map_err(err)?
                .prompt(&text)
                .map_err(err)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("tool-call") => {
            let id = args.get(1).ok_or(USAGE)?;
            let rest = &args[2..];
            let (name, rest) = match rest {
                [flag, name, rest @ ..] if flag == "--name" => (Some(name.as_str()), rest),
                _ => (None, rest),
            };
            let cmd = match rest {
                [dashes, cmd @ ..] if dashes == "--" && !cmd.is_empty() => cmd,
                _ => return Err(USAGE.into()),
            };
            let mut client = Client::from_env().map_err(err)?;
            client.tool_call_start(id, name).map_err(err)?;
            let status = Command::new(&cmd[0]).args(&cmd[1..]).status();
            let (report, code) = match status {
                Ok(s) => match (s.code(), s.signal()) {
                    (Some(c), _) => (format!("exit {c}"), c as u8),
                    (None, Some(sig)) => (format!("signal {sig}"), 128 + sig as u8),
                    _ => ("unknown".into(), 1),
                },
                Err(e) => (format!("not started: {e}"), 127),
            };
            client.tool_call_end(id, Some(&report)).map_err(err)?;
            Ok(ExitCode::from(code))
        }
        Some("tool-end") => {
            let id = args.get(1).ok_or(USAGE)?;
            Client::from_env()
                .map_err(err)?
                .tool_call_end(id, args.get(2).map(String::as_str))
                .map_err(err)?;
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(USAGE.into()),
    }
}
