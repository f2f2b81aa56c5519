//! Passing file descriptors over a Unix socket (SCM_RIGHTS).
use std::{
    io::{IoSlice, IoSliceMut},
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// Most descriptors one message carries.
pub const MAX_FDS: usize = 8;

pub fn send_fd(socket: BorrowedFd<'_>, fd: RawFd) -> nix::Result<()> {
    send_fds(socket, &[fd])
}

/// Sends `fds` with one marker byte.
pub fn send_fds(socket: BorrowedFd<'_>, fds: &[RawFd]) -> nix::Result<()> {
    let cmsg = [ControlMessage::ScmRights(fds)];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(b"f")],
        &cmsg,
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Receives one descriptor; `None` if the peer closed without sending one.
pub fn recv_fd(socket: BorrowedFd<'_>) -> nix::Result<Option<OwnedFd>> {
    Ok(recv_fds(socket)?.into_iter().next())
}

/// Receives the descriptors of one message (at most [`MAX_FDS`]); empty if the peer closed
/// without sending any.
pub fn recv_fds(socket: BorrowedFd<'_>) -> nix::Result<Vec<OwnedFd>> {
    let mut buf = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut out = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed these descriptors for us.
            out.extend(
                fds.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    Ok(out)
}
