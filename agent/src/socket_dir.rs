//! The agent's own mount namespace: a private socket directory, and the user's runtime
//! directory hidden.
//!
//! The threat: pathname UNIX sockets of host services (the D-Bus session bus, gpg-agent,
//! Wayland, PipeWire and the user's systemd manager all live in /run/user/UID). The kernel's
//! connect_unix check decides on spellings, so the session's own sockets need a place where a
//! spelling cannot be redirected: a tmpfs mounted `nosymfollow`, where no link is followed,
//! that only this namespace sees. Hiding /run/user/UID under an empty read-only tmpfs also
//! holds on kernels without the connect_unix hook.
use std::{io, path::Path};

use nix::{
    mount::{MsFlags, mount},
    sched::{CloneFlags, unshare},
};

/// A mount namespace of its own, into which nothing of ours propagates back to the host
/// (host mounts still propagate in).
pub fn private_namespace() -> io::Result<()> {
    unshare(CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )?;
    Ok(())
}

const QUIET: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// MS_NOSYMFOLLOW (Linux 5.10), which nix does not name.
const NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

/// The session's socket directory at `dir`: empty, the user's alone, no links followed.
pub fn mount_socket_dir(dir: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let options = format!("mode=0700,uid={uid},gid={gid},size=16m,nr_inodes=4096");
    mount(
        Some("warden-sockets"),
        dir,
        Some("tmpfs"),
        QUIET | NOSYMFOLLOW,
        Some(options.as_str()),
    )?;
    Ok(())
}

/// Covers `dir` with an empty read-only tmpfs.
pub fn hide(dir: &Path) -> io::Result<()> {
    mount(
        Some("warden-hidden"),
        dir,
        Some("tmpfs"),
        QUIET | MsFlags::MS_RDONLY,
        Some("mode=0555,size=4k,nr_inodes=16"),
    )?;
    Ok(())
}
