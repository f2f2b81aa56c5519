//! bpffs: where links are pinned so that enforcement outlives a crashed supervisor.
use std::{io, path::PathBuf};

pub const MOUNT_POINT: &str = "/sys/fs/bpf";
/// Pins of a session live in `<MOUNT_POINT>/warden/<session id>/`.
pub const WARDEN_DIR: &str = "warden";

/// Mounts bpffs at its usual place unless one is there. Idempotent, and safe when several
/// Wardens start at once.
pub fn ensure_mounted() -> io::Result<PathBuf> {
    let root = PathBuf::from(MOUNT_POINT);
    let mounted = || {
        std::fs::read_to_string("/proc/self/mounts").is_ok_and(|mounts| {
            mounts.lines().any(|l| {
                let mut f = l.split_whitespace();
                let (_, mnt, fstype) = (f.next(), f.next(), f.next());
                mnt == Some(MOUNT_POINT) && fstype == Some("bpf")
            })
        })
    };
    super::mount_once::mount_once("bpf", &root, Some("mode=0700"), mounted)?;
    Ok(root)
}

/// The pin directory of a session (not created).
pub fn session_dir(session: &str) -> PathBuf {
    PathBuf::from(MOUNT_POINT).join(WARDEN_DIR).join(session)
}
