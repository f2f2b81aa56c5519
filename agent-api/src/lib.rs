//! The agent API: how the supervised agent reports its own events to Warden, over the Unix
//! socket named by `WARDEN_AGENT_SOCKET` (one JSON message per line, one JSON reply per line).
//!
//! Warden knows who is speaking from the socket (SO_PEERCRED) and accepts only processes of
//! the session. A tool call belongs to the process that starts it: between `tool_call_start`
//! and `tool_call_end`, that process and every process it starts carry the call's id in the
//! audit log. So the process that runs the tool registers itself before it starts the tool
//! (`warden-agent-report tool-call ID -- CMD` does exactly that).
use std::{
    io::{self, BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// The environment variable that names the session's agent socket.
pub const SOCKET_ENV: &str = "WARDEN_AGENT_SOCKET";
/// Longest message accepted, newline included.
pub const MAX_MESSAGE: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    /// The user's prompt to the agent (redacted in the log unless the policy allows prompts).
    Prompt { text: String },
    ToolCallStart {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    ToolCallEnd {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
    },
    /// git's credential helper `get`: a credential for `host`, if the session was given one
    /// with delivery `helper` for that host.
    GitCredential { protocol: String, host: String },
    /// An agent's API-key helper command: the credential `name` (delivery `helper`).
    ApiKey { name: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The answer to `GitCredential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<GitCredential>,
}

impl Ack {
    pub fn ok() -> Self {
        Self {
            ok: true,
            error: None,
            credential: None,
        }
    }

    pub fn refused(error: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(error.into()),
            credential: None,
        }
    }
}

/// What git's credential helper protocol answers.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCredential {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for GitCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GitCredential({}, [secret])", self.username)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{SOCKET_ENV} is not set: not running under warden")]
    NotSupervised,
    #[error("the agent socket {path}: {source}")]
    Connect { path: PathBuf, source: io::Error },
    #[error("talking to warden: {0}")]
    Io(#[from] io::Error),
    #[error("warden refused the message: {0}")]
    Refused(String),
    #[error("warden's reply is not understood: {0}")]
    Protocol(String),
}

pub struct Client {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Self, ApiError> {
        let stream = UnixStream::connect(path).map_err(|source| ApiError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Connects to the socket named by `WARDEN_AGENT_SOCKET`.
    pub fn from_env() -> Result<Self, ApiError> {
        let path = std::env::var_os(SOCKET_ENV).ok_or(ApiError::NotSupervised)?;
        Self::connect(Path::new(&path))
    }

    /// Sends one message and waits until Warden has recorded it.
    pub fn send(&mut self, message: &Message) -> Result<(), ApiError> {
        self.exchange(message).map(drop)
    }

    /// Asks for the session's credential for `host` (git's credential helper `get`).
    pub fn git_credential(
        &mut self,
        protocol: &str,
        host: &str,
    ) -> Result<GitCredential, ApiError> {
        let ack = self.exchange(&Message::GitCredential {
            protocol: protocol.into(),
            host: host.into(),
        })?;
        ack.credential
            .ok_or_else(|| ApiError::Protocol("no credential in the answer".into()))
    }

    /// Asks for the session's credential `name` (an API-key helper command).
    pub fn api_key(&mut self, name: &str) -> Result<String, ApiError> {
        let ack = self.exchange(&Message::ApiKey { name: name.into() })?;
        ack.credential
            .map(|c| c.password)
            .ok_or_else(|| ApiError::Protocol("no credential in the answer".into()))
    }

    fn exchange(&mut self, message: &Message) -> Result<Ack, ApiError> {
        let mut line = serde_json::to_vec(message).map_err(io::Error::other)?;
        line.push(b'\n');
        // Warden may answer and hang up before reading (a refused peer): its reply is still
        // there to read even when the write failed.
        let written = self.writer.write_all(&line);
        let mut reply = String::new();
        let read = self.reader.read_line(&mut reply);
        if reply.is_empty() {
            written?;
            read?;
            return Err(ApiError::Protocol("warden closed the connection".into()));
        }
        let reply: Ack =
            serde_json::from_str(&reply).map_err(|e| ApiError::Protocol(e.to_string()))?;
        match reply {
            Ack { ok: true, .. } => Ok(reply),
            Ack { error, .. } => Err(ApiError::Refused(error.unwrap_or_default())),
        }
    }

    pub fn prompt(&mut self, text: &str) -> Result<(), ApiError> {
        self.send(&Message::Prompt { text: text.into() })
    }

    /// Registers a tool call for the calling process and everything it starts from now on.
    pub fn tool_call_start(&mut self, id: &str, name: Option<&str>) -> Result<(), ApiError> {
        self.send(&Message::ToolCallStart {
            id: id.into(),
            name: name.map(String::from),
        })
    }

    pub fn tool_call_end(&mut self, id: &str, status: Option<&str>) -> Result<(), ApiError> {
        self.send(&Message::ToolCallEnd {
            id: id.into(),
            status: status.map(String::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_json() {
        let m = Message::ToolCallStart {
            id: "c1".into(),
            name: Some("shell".into()),
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"tool_call_start","id":"c1","name":"shell"}"#
        );
        let back: Message = serde_json::from_str(r#"{"type":"prompt","text":"hi"}"#).unwrap();
        assert_eq!(back, Message::Prompt { text: "hi".into() });
        assert!(serde_json::from_str::<Message>(r#"{"type":"prompt","text":"x","y":1}"#).is_err());
    }

    #[test]
    fn a_client_talks_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            let mut got = Vec::new();
            for ok in [true, false] {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                got.push(serde_json::from_str::<Message>(&line).unwrap());
                let reply = if ok { Ack::ok() } else { Ack::refused("no") };
                writeln!(w, "{}", serde_json::to_string(&reply).unwrap()).unwrap();
            }
            got
        });
        let mut c = Client::connect(&path).unwrap();
        c.prompt("hello").unwrap();
        let err = c.tool_call_end("c1", Some("ok")).unwrap_err();
        assert!(
            matches!(err, ApiError::Refused(ref e) if e == "no"),
            "{err}"
        );
        let got = server.join().unwrap();
        assert_eq!(
            got[0],
            Message::Prompt {
                text: "hello".into()
            }
        );
    }
}
