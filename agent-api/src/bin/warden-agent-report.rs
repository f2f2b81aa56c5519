//! `warden-agent-report`: the agent API from a shell, for agents written as scripts (and for
//! tests).
//!
//!   warden-agent-report prompt [TEXT]              the user's prompt (TEXT, or stdin)
//!   warden-agent-report tool-call ID [--name NAME] -- CMD [ARGS...]
//!                                                  runs CMD as tool call ID: registers this
//!                                                  process, runs CMD as its child, reports the
//!                                                  end with CMD's status, exits with it
//!   warden-agent-report tool-end ID [STATUS]       ends tool call ID
//!   warden-agent-report git-credential get         git's credential helper (the session sets
//!                                                  it up for credentials delivered by helper)
//!   warden-agent-report api-key NAME               prints credential NAME (delivery helper):
//!                                                  an agent's API-key helper command
use std::{
    io::Read,
    os::unix::process::ExitStatusExt,
    process::{Command, ExitCode},
};

use warden_agent_api::{ApiError, Client};

const USAGE: &str = "usage: warden-agent-report prompt [TEXT]\n       warden-agent-report tool-call ID [--name NAME] -- CMD [ARGS...]\n       warden-agent-report tool-end ID [STATUS]\n       warden-agent-report git-credential get|store|erase\n       warden-agent-report api-key NAME";

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
        Some("git-credential") => git_credential(args.get(1).map(String::as_str)),
        Some("api-key") => {
            let name = args.get(1).ok_or(USAGE)?;
            let key = Client::from_env()
                .and_then(|mut c| c.api_key(name))
                .map_err(err)?;
            println!("{key}");
            Ok(ExitCode::SUCCESS)
        }
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

/// git's credential helper protocol: `key=value` lines on stdin up to a blank line; `get`
/// answers `username` and `password`. `store` and `erase` have nothing to do: the credential
/// lives in the user's keyring, not here.
fn git_credential(op: Option<&str>) -> Result<ExitCode, String> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| format!("reading git's request: {e}"))?;
    match op {
        Some("get") => {}
        Some("store" | "erase") => return Ok(ExitCode::SUCCESS),
        _ => return Err(USAGE.into()),
    }
    let field = |key: &str| {
        input
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_default()
            .to_string()
    };
    let c = Client::from_env()
        .and_then(|mut c| c.git_credential(&field("protocol"), &field("host")))
        .map_err(|e| e.to_string())?;
    println!("username={}\npassword={}\n", c.username, c.password);
    Ok(ExitCode::SUCCESS)
}
