//! The session's end of the agent API (`warden_agent_api`): a Unix socket the agent reports
//! its prompts and tool calls to. The socket lives outside Warden's protected directories, so
//! the sandbox can reach it, in a root-owned directory the agent cannot change; only processes
//! of the session are heard (SO_PEERCRED pid, then its cgroup).
use std::{
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::mpsc,
    task::JoinHandle,
};
use warden_agent_api::{Ack, MAX_MESSAGE, Message};

use crate::{
    audit_log::hex,
    clock,
    credentials::helper::Wanted,
    events::{AgentPrompt, AgentToolCall, Event, PROMPT_MAX, ToolCallPhase, escape::escape_bytes},
};

/// Where the sockets live (not under /run/warden, which sessions may not reach).
pub const SOCKET_DIR: &str = "/run/warden-agent";

/// Ids and names are the agent's words: bounded, escaped.
const NAME_MAX: usize = 256;

pub struct AgentApi {
    pub path: PathBuf,
    task: JoinHandle<()>,
}

/// Dropping it stops listening (the pipeline's last drain waits for every event sender to
/// go) and removes the socket.
impl Drop for AgentApi {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

struct Session {
    /// The session cgroup as /proc/PID/cgroup shows it (`/warden/<id>`).
    cgroup: String,
    log_prompts: bool,
    events: mpsc::Sender<(u64, Event)>,
    helper: crate::credentials::helper::Helper,
}

/// The session's agent API socket in `dir`.
pub fn socket_path(dir: &Path, session_id: &str) -> PathBuf {
    dir.join(format!("{session_id}.sock"))
}

/// Listens on `dir/<session id>.sock` for processes of the session cgroup `cgroup` (relative
/// to the cgroup2 root).
pub fn serve(
    dir: &Path,
    session_id: &str,
    cgroup: String,
    log_prompts: bool,
    events: mpsc::Sender<(u64, Event)>,
    helper: crate::credentials::helper::Helper,
) -> std::io::Result<AgentApi> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    let path = socket_path(dir, session_id);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    // The agent runs as the user: it must be able to connect (who may is decided per peer).
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
    let session = std::sync::Arc::new(Session {
        cgroup,
        log_prompts,
        events,
        helper,
    });
    let task = tokio::spawn(async move {
        // Owned here, so that stopping the listener ends every connection (each holds an
        // event sender).
        let mut connections = tokio::task::JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            match listener.accept().await {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, session.clone()));
                }
                Err(e) => {
                    tracing::error!("agent API: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(AgentApi { path, task })
}

fn bounded(s: &str, max: usize) -> String {
    let bytes = s.as_bytes();
    escape_bytes(&bytes[..bytes.len().min(max)])
}

async fn reply(stream: &mut tokio::net::unix::OwnedWriteHalf, reply: Ack) -> bool {
    let mut line = serde_json::to_vec(&reply).unwrap_or_default();
    line.push(b'\n');
    stream.write_all(&line).await.is_ok()
}

async fn connection(stream: UnixStream, session: std::sync::Arc<Session>) {
    let pid = match stream.peer_cred().ok().and_then(|c| c.pid()) {
        Some(pid) if pid > 0 => pid as u32,
        _ => return,
    };
    let (read, mut write) = stream.into_split();
    if !crate::cgroup::holds_pid(&session.cgroup, pid) {
        tracing::warn!("agent API: refused pid {pid}, which is not a process of this session");
        reply(&mut write, Ack::refused("not a process of this session")).await;
        return;
    }
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = match (&mut reader)
            .take(MAX_MESSAGE as u64)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if line.last() != Some(&b'\n') {
            let error = if n >= MAX_MESSAGE {
                "message too long"
            } else {
                "message without a newline"
            };
            reply(&mut write, Ack::refused(error)).await;
            return;
        }
        let answer = match serde_json::from_slice::<Message>(&line) {
            Ok(message) => {
                let (ack, event) = session.answer(pid, message).await;
                // Recorded before the answer goes out: no use of a credential unrecorded.
                match session.events.send((clock::boot_ns(), event)).await {
                    Ok(()) => ack,
                    Err(_) => Ack::refused("the session is ending"),
                }
            }
            Err(e) => Ack::refused(format!("not an agent API message: {e}")),
        };
        if !reply(&mut write, answer).await {
            return;
        }
    }
}

impl Session {
    async fn answer(&self, pid: u32, message: Message) -> (Ack, Event) {
        match message {
            Message::GitCredential { protocol, host } => {
                let wanted = Wanted::ForHost {
                    protocol: bounded(&protocol, NAME_MAX),
                    host: host.to_ascii_lowercase(),
                };
                self.helper.answer(pid, wanted).await
            }
            Message::ApiKey { name } => self.helper.answer(pid, Wanted::Named(name)).await,
            other => (Ack::ok(), self.event(pid, other)),
        }
    }

    fn event(&self, pid: u32, message: Message) -> Event {
        match message {
            Message::Prompt { text } => {
                let bytes = text.as_bytes();
                let (text, text_truncated) = if self.log_prompts {
                    (Some(bounded(&text, PROMPT_MAX)), bytes.len() > PROMPT_MAX)
                } else {
                    (None, false)
                };
                Event::AgentPrompt(AgentPrompt {
                    pid,
                    bytes: bytes.len() as u64,
                    sha256: hex(&Sha256::digest(bytes)),
                    redacted: text.is_none(),
                    text,
                    text_truncated,
                })
            }
            Message::ToolCallStart { id, name } => Event::AgentToolCall(AgentToolCall {
                pid,
                id: bounded(&id, NAME_MAX),
                phase: ToolCallPhase::Start,
                name: name.map(|n| bounded(&n, NAME_MAX)),
                status: None,
                processes: None,
            }),
            Message::ToolCallEnd { id, status } => Event::AgentToolCall(AgentToolCall {
                pid,
                id: bounded(&id, NAME_MAX),
                phase: ToolCallPhase::End,
                name: None,
                status: status.map(|s| bounded(&s, NAME_MAX)),
                processes: None,
            }),
            Message::GitCredential { .. } | Message::ApiKey { .. } => {
                unreachable!("answered by `answer`")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_redacted_unless_allowed() {
        let (tx, _rx) = mpsc::channel(1);
        let mut s = Session {
            cgroup: "/warden/x".into(),
            log_prompts: false,
            events: tx,
            helper: Default::default(),
        };
        let text = "deploy with key hunter2\n".to_string();
        let Event::AgentPrompt(p) = s.event(7, Message::Prompt { text: text.clone() }) else {
            panic!()
        };
        assert!(p.redacted && p.text.is_none());
        assert_eq!(p.bytes, text.len() as u64);
        assert_eq!(p.sha256, hex(&Sha256::digest(text.as_bytes())));
        s.log_prompts = true;
        let Event::AgentPrompt(p) = s.event(7, Message::Prompt { text }) else {
            panic!()
        };
        assert!(!p.redacted);
        assert_eq!(p.text.as_deref(), Some("deploy with key hunter2\n"));
        let long = "\\".repeat(PROMPT_MAX + 5);
        let Event::AgentPrompt(p) = s.event(7, Message::Prompt { text: long }) else {
            panic!()
        };
        assert!(p.text_truncated);
        assert_eq!(p.text.unwrap().len(), 2 * PROMPT_MAX, "escaped backslashes");
    }
}
