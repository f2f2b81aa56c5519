//! The reviewer command: a program named by the requirements (`reviewer_command`), for
//! example a wrapper around a language model, that answers approval requests.
//!
//! It gets one request as JSON on stdin (see [`Input`]) and must print one JSON answer on
//! stdout within the timeout: `{"decision": "approve" | "deny", "scope": "once" | "session",
//! "reason": "..."}` (`scope` and `reason` optional). Anything else (no answer in time, a
//! crash, a non-zero exit, output that is not such an object) denies: the reviewer fails
//! closed. It runs as Warden does (root), outside the session, in its own process group,
//! killed with the group on timeout.
use std::{process::Stdio, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Config, Reply, Request};
use crate::events::{Risk, Scope, Subject};

/// Most bytes of the answer read; a longer one is refused.
const MAX_ANSWER: usize = 64 * 1024;

/// What the reviewer gets.
#[derive(Clone, Debug, Serialize)]
pub struct Input {
    /// Format version of this object.
    pub version: u32,
    pub session: String,
    pub id: String,
    #[serde(flatten)]
    pub subject: Subject,
    pub why: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The auto-reviewer's assessment, when it ran first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
    /// exec: the commands it runs, wrappers and shells looked through.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<Vec<String>>,
    pub workspace: String,
    pub approval_policy: String,
}

impl Input {
    pub fn new(cfg: &Config, id: &str, request: &Request, risk: Option<Risk>) -> Self {
        let commands = match &request.facts {
            super::Facts::Exec { commands, .. } => commands.clone(),
            super::Facts::Dns { .. }
            | super::Facts::Credential { .. }
            | super::Facts::Finding { .. } => Vec::new(),
        };
        Self {
            version: 1,
            session: cfg.session.clone(),
            id: id.to_string(),
            subject: request.subject.clone(),
            why: request.why.clone(),
            rule: request.rule.clone(),
            risk,
            commands,
            workspace: cfg.risk.workspace.display().to_string(),
            approval_policy: cfg.policy.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("the reviewer command could not be started: {0}")]
    Spawn(std::io::Error),
    #[error("the reviewer command did not answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("the reviewer command failed ({0})")]
    Failed(String),
    #[error("the reviewer command's answer is not valid: {0}")]
    BadAnswer(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    decision: Decision,
    #[serde(default)]
    scope: Option<Scope>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Decision {
    Approve,
    Deny,
}

/// Parses the reviewer's output.
pub fn parse(output: &[u8]) -> Result<Reply, ReviewError> {
    let text = std::str::from_utf8(output)
        .map_err(|_| ReviewError::BadAnswer("not UTF-8".into()))?
        .trim();
    let a: Answer =
        serde_json::from_str(text).map_err(|e| ReviewError::BadAnswer(format!("{e}")))?;
    Ok(Reply {
        approve: matches!(a.decision, Decision::Approve),
        scope: a.scope.unwrap_or(Scope::Once),
        reason: a.reason.map(|r| format!("reviewer: {r}")),
    })
}

/// Runs the reviewer on one request.
pub async fn ask(
    command: &[String],
    input: &Input,
    timeout: Duration,
) -> Result<Reply, ReviewError> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| ReviewError::Failed("empty command".into()))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(crate::signals::unblock_in_child);
    }
    let mut child = cmd.spawn().map_err(ReviewError::Spawn)?;
    let pgid = child.id();
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let json = serde_json::to_vec(input).expect("serialisable");
    let run = async {
        // A reviewer that does not read its input still gets to answer.
        let _ = stdin.write_all(&json).await;
        let _ = stdin.write_all(b"\n").await;
        drop(stdin);
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut stdout = (&mut stdout).take(MAX_ANSWER as u64 + 1);
        let mut stderr = (&mut stderr).take(4096);
        let (read_out, _, status) = tokio::join!(
            stdout.read_to_end(&mut out),
            stderr.read_to_end(&mut err),
            child.wait()
        );
        read_out.map_err(|e| ReviewError::Failed(e.to_string()))?;
        let status = status.map_err(|e| ReviewError::Failed(e.to_string()))?;
        if !status.success() {
            let err = String::from_utf8_lossy(&err);
            let err = err.trim();
            return Err(ReviewError::Failed(if err.is_empty() {
                status.to_string()
            } else {
                format!("{status}: {}", crate::events::escape::for_terminal(err))
            }));
        }
        if out.len() > MAX_ANSWER {
            return Err(ReviewError::BadAnswer(format!(
                "longer than {MAX_ANSWER} bytes"
            )));
        }
        parse(&out)
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(result) => result,
        Err(_) => {
            if let Some(pgid) = pgid {
                // The whole group: a shell script's children go too.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Err(ReviewError::Timeout(timeout))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_answers_and_refuses_anything_else() {
        let r = parse(br#"{"decision":"approve","scope":"session","reason":"fine"}"#).unwrap();
        assert!(r.approve);
        assert_eq!(r.scope, Scope::Session);
        assert_eq!(r.reason.as_deref(), Some("reviewer: fine"));
        let r = parse(b"  {\"decision\":\"deny\"}\n").unwrap();
        assert!(!r.approve);
        assert_eq!(r.scope, Scope::Once);
        for bad in [
            &b""[..],
            b"yes",
            b"{\"decision\":\"maybe\"}",
            b"{\"approve\":true}",
            b"{\"decision\":\"approve\",\"extra\":1}",
            b"\xff\xfe",
            b"{\"decision\":\"approve\"} {\"decision\":\"deny\"}",
        ] {
            assert!(
                matches!(parse(bad), Err(ReviewError::BadAnswer(_))),
                "{bad:?}"
            );
        }
    }
}
