//! The daemon's socket protocol: frames of JSON, each after its length (4 bytes, big
//! endian). A client sends one request; `start` is followed by the client's standard streams
//! (SCM_RIGHTS), and the connection then belongs to the session, which tells the client its
//! id and, at the end, the status to exit with, while the client forwards the signals it gets.
use std::{
    ffi::OsString,
    io::{self, Read, Write},
    os::unix::ffi::{OsStrExt as _, OsStringExt as _},
};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use warden_wire::string_enum;

/// Bumped when a frame changes incompatibly; the daemon refuses other versions.
pub const VERSION: u32 = 1;
/// Largest frame either side accepts (argv and environment included).
pub const MAX_FRAME: u32 = 4 << 20;
/// Where `wardend` listens (systemd's socket unit creates it; the daemon otherwise).
pub const SOCKET: &str = "/run/warden/wardend.sock";
/// Overrides [`SOCKET`] for `warden run`, `warden status` and `wardend`.
pub const SOCKET_ENV: &str = "WARDEN_SOCKET";

/// Bytes that need not be UTF-8 (arguments, paths, the environment).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Bytes(pub Vec<u8>);

impl From<&std::ffi::OsStr> for Bytes {
    fn from(s: &std::ffi::OsStr) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl From<Bytes> for OsString {
    fn from(b: Bytes) -> Self {
        OsString::from_vec(b.0)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// A session: the `warden` command line as the user typed it, from where, with what.
    Start(Box<StartRequest>),
    /// The live sessions (the asker's own; root: all).
    Status,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StartRequest {
    pub version: u32,
    /// Every argument after the program name (`run`, its flags, `--`, the command).
    pub args: Vec<Bytes>,
    pub cwd: Bytes,
    pub env: Vec<(Bytes, Bytes)>,
    /// The user's configuration file, read by the client as the user (never by root).
    pub user_config: Option<UserConfigText>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserConfigText {
    pub path: String,
    pub text: String,
}

/// From the daemon or the session to the client.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Refused { message: String },
    Started { session: String },
    Exited { status: i32 },
    Sessions { sessions: Vec<SessionView> },
}

/// One live session as `warden status` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionView {
    pub id: String,
    pub user: String,
    pub uid: u32,
    pub supervisor_pid: u32,
    pub started: String,
    pub command: String,
    pub workspace: String,
}

string_enum! {
    /// A signal the client got and passes on to the session.
    Forwarded, "forwarded signal" {
        /// Ctrl-C: the command's process group gets SIGINT.
        Interrupt = "interrupt",
        /// Ctrl-\: SIGQUIT to the command's process group.
        Quit = "quit",
        /// The terminal was resized: SIGWINCH to the command's process group.
        Resize = "resize",
        /// Ctrl-Z: SIGTSTP to the command's process group (the client then stops itself).
        Suspend = "suspend",
        /// The client was resumed: SIGCONT to the command's process group.
        Resume = "resume",
        /// The terminal hung up: the session ends.
        Hangup = "hangup",
        /// The client was told to terminate: the session ends.
        Terminate = "terminate",
    }
}

/// From the client to its session.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClientSignal {
    pub signal: Forwarded,
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("a frame of {0} bytes is over the limit of {MAX_FRAME}")]
    TooLarge(u64),
    #[error("a malformed frame: {0}")]
    Malformed(serde_json::Error),
    #[error(transparent)]
    Io(#[from] io::Error),
}

pub fn write_frame(w: &mut impl Write, value: &impl Serialize) -> Result<(), FrameError> {
    let body = serde_json::to_vec(value).map_err(FrameError::Malformed)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&n| n <= MAX_FRAME)
        .ok_or(FrameError::TooLarge(body.len() as u64))?;
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend(body);
    w.write_all(&frame)?;
    Ok(())
}

/// Reads exactly one frame (never a byte more: descriptors may follow it).
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        other => other?,
    }
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len.into()));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body).map_err(FrameError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bytes_need_not_be_utf8() {
        let req = Request::Start(Box::new(StartRequest {
            version: VERSION,
            args: vec![Bytes(b"run".to_vec()), Bytes(vec![0xff, b'\n', 0x1b])],
            cwd: Bytes(b"/tmp".to_vec()),
            env: vec![(Bytes(b"A".to_vec()), Bytes(vec![0x80]))],
            user_config: None,
        }));
        let mut buf = Vec::new();
        write_frame(&mut buf, &req).unwrap();
        let Request::Start(back) = read_frame::<Request>(&mut buf.as_slice()).unwrap() else {
            panic!("not a start")
        };
        assert_eq!(back.args[1].0, vec![0xff, b'\n', 0x1b]);
        assert_eq!(back.env[0].1.0, vec![0x80]);
    }

    #[test]
    fn oversized_empty_and_malformed_frames_are_errors() {
        let huge = (MAX_FRAME + 1).to_be_bytes();
        assert!(matches!(
            read_frame::<Reply>(&mut huge.as_slice()),
            Err(FrameError::TooLarge(_))
        ));
        assert!(matches!(
            read_frame::<Reply>(&mut [].as_slice()),
            Err(FrameError::Closed)
        ));
        let mut bad = 3u32.to_be_bytes().to_vec();
        bad.extend(b"{x}");
        assert!(matches!(
            read_frame::<Reply>(&mut bad.as_slice()),
            Err(FrameError::Malformed(_))
        ));
    }
}
