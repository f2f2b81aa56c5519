//! A session started by the service, and its client: the session tells the client its id and
//! its exit status; the client's signals come in. The client gone (its terminal closed, it was
//! killed) is a hang-up: nobody is left to see or answer the session.
use std::{
    io::Read as _,
    os::{
        fd::{FromRawFd as _, OwnedFd},
        unix::net::UnixStream,
    },
    sync::Mutex,
};

use tokio::sync::mpsc;

use super::{
    daemon::Handoff,
    protocol::{self, ClientSignal, Forwarded, Reply},
};

/// What comes from the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FromClient {
    Signal(Forwarded),
    /// The connection closed.
    Gone,
}

/// The session's end of the client's connection.
pub struct ClientLink {
    stream: Mutex<UnixStream>,
}

impl ClientLink {
    /// Takes over descriptor `fd` (given by the daemon) and reads the client's signals on a
    /// thread of its own.
    ///
    /// # Safety
    /// `fd` is an open Unix stream socket that nothing else in this process owns.
    pub unsafe fn adopt(fd: i32) -> std::io::Result<(Self, mpsc::UnboundedReceiver<FromClient>)> {
        // SAFETY: per the contract above.
        let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
        set_cloexec(&stream)?;
        let reader = stream.try_clone()?;
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            loop {
                match protocol::read_frame::<ClientSignal>(&mut &reader) {
                    Ok(s) => {
                        if tx.send(FromClient::Signal(s.signal)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::debug!("the client's connection: {e}");
                        let _ = tx.send(FromClient::Gone);
                        return;
                    }
                }
            }
        });
        Ok((
            Self {
                stream: Mutex::new(stream),
            },
            rx,
        ))
    }

    pub fn send(&self, reply: &Reply) {
        let stream = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = protocol::write_frame(&mut &*stream, reply) {
            tracing::debug!("telling the client: {e}");
        }
    }
}

/// Reads the hand-off the daemon left at `fd`.
///
/// # Safety
/// `fd` is an open file that nothing else in this process owns.
pub unsafe fn read_handoff(fd: i32) -> anyhow::Result<Handoff> {
    // SAFETY: per the contract above.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(serde_json::from_slice(&bytes)?)
}

fn set_cloexec(stream: &UnixStream) -> std::io::Result<()> {
    nix::fcntl::fcntl(
        stream,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    Ok(())
}
