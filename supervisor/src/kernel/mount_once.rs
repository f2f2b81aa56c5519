//! Mounting a kernel file system (tracefs, bpffs) that nothing mounted at boot, once.
//!
//! Two Wardens starting at the same moment would both find it missing and both mount it, the
//! second on top of the first: what the first had pinned there (its network programs) would
//! vanish from view, and its teardown would fail to find its own pins. So the check and the
//! mount happen under a lock that every Warden takes.
use std::{
    fs::{self, OpenOptions},
    io,
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::Path,
};

use nix::{
    fcntl::{Flock, FlockArg},
    mount::MsFlags,
};

/// Root-only, inside a protected path (the agent cannot hold the lock to stall Warden).
const LOCK: &str = "/run/warden/mounts.lock";

/// Mounts `fstype` on `target` unless `mounted()` already holds.
pub fn mount_once(
    fstype: &str,
    target: &Path,
    data: Option<&str>,
    mounted: impl Fn() -> bool,
) -> io::Result<()> {
    if mounted() {
        return Ok(());
    }
    let lock_path = Path::new(LOCK);
    if let Some(dir) = lock_path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(lock_path)?;
    let _lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
    if mounted() {
        return Ok(());
    }
    nix::mount::mount(
        Some(fstype),
        target,
        Some(fstype),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        data,
    )
    .map_err(io::Error::from)
}
