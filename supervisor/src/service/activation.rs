//! The daemon's listening socket: handed over by systemd (socket activation: LISTEN_PID,
//! LISTEN_FDS, the socket at fd 3), else bound at the path, open to every user (each
//! connection is then authorised by its credentials).
use std::{
    io,
    os::{
        fd::FromRawFd as _,
        unix::{fs::PermissionsExt as _, net::UnixListener},
    },
    path::Path,
};

/// The first descriptor systemd passes.
const SD_LISTEN_FDS_START: i32 = 3;

pub fn listener(path: &Path) -> io::Result<UnixListener> {
    if let Some(listener) = from_systemd() {
        tracing::info!("listening on the socket systemd passed");
        return Ok(listener);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    // A socket that answers belongs to a daemon that runs: never take it over.
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} answers: another wardend runs", path.display()),
        ));
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    tracing::info!("listening on {}", path.display());
    Ok(listener)
}

/// The socket systemd passed to this process, if any (and the variables unset, so that the
/// sessions started from here do not see them).
fn from_systemd() -> Option<UnixListener> {
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    let fds: i32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    // SAFETY: before any thread exists (the daemon's first step).
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    if pid != std::process::id() || fds < 1 {
        return None;
    }
    // SAFETY: systemd passed this descriptor to us, and nothing else owns it.
    let listener = unsafe { UnixListener::from_raw_fd(SD_LISTEN_FDS_START) };
    let _ = nix::fcntl::fcntl(
        &listener,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    Some(listener)
}
