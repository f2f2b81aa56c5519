//! bpffs: where links are pinned so that enforcement outlives a crashed supervisor.
use std::{io, path::PathBuf};

pub const MOUNT_POINT: &str = "/sys/fs/bpf";
/// Pins of a session live in `<MOUNT_POINT>/warden/<session id>/`.
pub const WARDEN_DIR: &str = "warden";

/// Mounts bpffs at its usual place unless one is there. Idempotent.
pub fn ensure_mounted() -> io::Result<PathBuf> {
    let root = PathBuf::from(MOUNT_POINT);
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    let mounted = mounts.lines().any(|l| {
        let mut f = l.split_whitespace();
        let (_, mnt, fstype) = (f.next(), f.next(), f.next());
        mnt == Some(MOUNT_POINT) && fstype == Some("bpf")
    });
    if !mounted {
        nix::mount::mount(
            Some("bpf"),
            &root,
            Some("bpf"),
            nix::mount::MsFlags::MS_NOSUID
                | nix::mount::MsFlags::MS_NODEV
                | nix::mount::MsFlags::MS_NOEXEC,
            Some("mode=0700"),
        )
        .map_err(io::Error::from)?;
    }
    Ok(root)
}

/// The pin directory of a session (not created).
pub fn session_dir(session: &str) -> PathBuf {
    PathBuf::from(MOUNT_POINT).join(WARDEN_DIR).join(session)
}
