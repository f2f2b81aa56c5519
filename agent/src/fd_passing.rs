//! Passing a file descriptor over a Unix socket (SCM_RIGHTS).
use std::{
    io::{IoSlice, IoSliceMut},
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

pub fn send_fd(socket: BorrowedFd<'_>, fd: RawFd) -> nix::Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(b"fd")],
        &cmsg,
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Receives one descriptor; `None` if the peer closed without sending one.
pub fn recv_fd(socket: BorrowedFd<'_>) -> nix::Result<Option<OwnedFd>> {
    let mut buf = [0u8; 2];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the kernel just installed this descriptor for us.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    Ok(None)
}
