//! `warden approvals` from another terminal: each session serves a Unix socket next to its
//! registration (`RUN_DIR/<session>.approvals.sock`) that lists pending requests and takes
//! answers, one JSON object per line each way.
//!
//! The socket file is open to everyone; who may use it is decided per connection from the
//! kernel's credentials of the peer (SO_PEERCRED, and a pidfd so that the pid cannot be
//! recycled under the check): root, the session's user, or a member of the approvers group.
//! A process inside any Warden session is refused whoever it runs as: the agent must not
//! answer its own requests. Every refusal is an `approval.refused` record.
use std::{
    io::{self, BufRead, BufReader, Write},
    os::unix::{fs::PermissionsExt, net::UnixStream as StdStream},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt},
    net::{UnixListener, UnixStream},
};

use super::{Broker, PendingView, Reply};
use crate::{
    events::{ApprovalRefused, Event},
    peer::Peer,
};

const SUFFIX: &str = ".approvals.sock";

/// The socket of session `id` in `run_dir`.
pub fn path(run_dir: &Path, id: &str) -> PathBuf {
    run_dir.join(format!("{id}{SUFFIX}"))
}

/// Longest request line accepted.
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    List,
    Answer {
        id: String,
        #[serde(flatten)]
        reply: Reply,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingView>,
}

/// Who may answer: root, the session's user, members of this group.
pub struct Approvers {
    pub uid: u32,
    pub gid: Option<u32>,
}

/// The socket, removed when dropped.
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub fn bind(path: &Path) -> io::Result<Server> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    // Everyone may connect; each connection is then authorised by its credentials.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(Server {
        listener,
        path: path.to_path_buf(),
    })
}

/// Why a peer may not answer, if it may not.
fn refusal(peer: &Peer, approvers: &Approvers) -> Option<String> {
    match peer.in_a_session() {
        Err(why) => return Some(why),
        Ok(true) => {
            return Some("a process of a Warden session cannot answer approval requests".into());
        }
        Ok(false) => {}
    }
    if peer.uid == 0 || peer.uid == approvers.uid {
        return None;
    }
    if let Some(gid) = approvers.gid
        && peer.groups().contains(&gid)
    {
        return None;
    }
    Some(format!(
        "uid {} is neither the session's user (uid {}) nor an approver",
        peer.uid, approvers.uid
    ))
}

impl Server {
    /// Serves until the task is dropped.
    pub async fn serve(self, broker: Arc<Broker>, approvers: Approvers) {
        let approvers = Arc::new(approvers);
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                continue;
            };
            let (broker, approvers) = (broker.clone(), approvers.clone());
            tokio::spawn(async move {
                if let Err(e) = connection(stream, &broker, &approvers).await {
                    tracing::debug!("approvals socket: {e}");
                }
            });
        }
    }
}

async fn connection(stream: UnixStream, broker: &Broker, approvers: &Approvers) -> io::Result<()> {
    let peer = Peer::of(&stream)?;
    let (pid, uid) = (peer.pid, peer.uid);
    let (read, mut write) = stream.into_split();
    let send = |r: &Response| {
        let mut line = serde_json::to_vec(r).expect("serialisable");
        line.push(b'\n');
        line
    };
    let mut lines = tokio::io::BufReader::new(read)
        .take(MAX_LINE as u64 * 16)
        .lines();
    if let Some(reason) = refusal(&peer, approvers) {
        // The request is read (and ignored) so that the client gets the answer, not EPIPE.
        let _ = lines.next_line().await;
        broker.emit(Event::ApprovalRefused(ApprovalRefused {
            peer_pid: pid,
            peer_uid: uid,
            reason: reason.clone(),
        }));
        let r = Response {
            error: Some(format!("refused: {reason}")),
            ..Response::default()
        };
        return write.write_all(&send(&r)).await;
    }
    let by = format!("uid {uid} (pid {pid}) through warden approvals");
    while let Some(line) = lines.next_line().await? {
        let response = match serde_json::from_str::<Op>(&line) {
            Ok(Op::List) => Response {
                ok: true,
                pending: broker.pending(),
                ..Response::default()
            },
            Ok(Op::Answer { id, reply }) => match broker.answer(&id, &reply, by.clone()) {
                Ok(()) => Response {
                    ok: true,
                    ..Response::default()
                },
                Err(e) => Response {
                    error: Some(e.to_string()),
                    ..Response::default()
                },
            },
            Err(e) => Response {
                error: Some(format!("not a request: {e}")),
                ..Response::default()
            },
        };
        write.write_all(&send(&response)).await?;
    }
    Ok(())
}

/// One request to one session's socket (the client side, for `warden approvals`).
pub fn call(socket: &Path, op: &Op) -> io::Result<Response> {
    let mut stream = StdStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = serde_json::to_vec(op).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    serde_json::from_str(&answer)
        .map_err(|e| io::Error::other(format!("{}: unreadable answer ({e})", socket.display())))
}

/// The approvals sockets of the live sessions in `run_dir`.
pub fn sockets(run_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(run_dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| session_of(p).is_some())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    out.sort();
    Ok(out)
}

/// The session whose socket this is.
fn session_of(socket: &Path) -> Option<&str> {
    socket.file_name()?.to_str()?.strip_suffix(SUFFIX)
}

/// The ids of the sessions with a socket in `run_dir`.
pub fn live_sessions(run_dir: &Path) -> Vec<String> {
    (sockets(run_dir).unwrap_or_default().iter())
        .filter_map(|s| session_of(s).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_with_default_scope() {
        let op: Op = serde_json::from_str(r#"{"op":"answer","id":"a-1","approve":true}"#).unwrap();
        match op {
            Op::Answer { id, reply } => {
                assert_eq!(id, "a-1");
                assert!(reply.approve);
                assert_eq!(reply.scope, crate::events::Scope::Once);
            }
            Op::List => panic!(),
        }
        assert!(serde_json::from_str::<Op>(r#"{"op":"delete"}"#).is_err());
    }

    #[test]
    fn a_process_of_no_session_is_refused_unless_it_is_the_user_or_an_approver() {
        let me = std::process::id();
        let uid = nix::unistd::Uid::effective().as_raw();
        let gid = nix::unistd::Gid::effective().as_raw();
        let other = Approvers {
            uid: uid + 1,
            gid: None,
        };
        let peer = |pid, uid| Peer::assumed(pid, uid, gid);
        if uid != 0 {
            assert!(refusal(&peer(me, uid), &other).is_some());
        }
        assert!(refusal(&peer(me, uid), &Approvers { uid, gid: None }).is_none());
        let by_group = Approvers {
            uid: uid + 1,
            gid: Some(gid),
        };
        assert!(refusal(&peer(me, uid + 7), &by_group).is_none());
        assert!(
            refusal(&peer(u32::MAX - 1, uid), &other).is_some(),
            "no such process"
        );
    }
}
