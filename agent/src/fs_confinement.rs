//! File-system confinement with Landlock.
//!
//! Landlock rules only grant; nothing can be subtracted from a grant. So "read everything but
//! ~/.ssh" becomes: grant each entry of `/` except `home`, each entry of `/home` except the
//! user's, and each entry of the user's home except `.ssh`. Listing directories is granted
//! everywhere (so `ls /` and `ls ~` work): the *names* in a protected directory are visible,
//! their contents are not. By design, entries created later in a directory on the way to a
//! protected path by someone else are not readable in this session, and such a directory
//! inside a write root accepts no new files itself (its other entries stay writable).
use std::{
    collections::BTreeSet,
    io,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use landlock::{
    ABI, Access, AccessFs, BitFlags, CompatLevel, Compatible, PathBeneath, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope,
};
use nix::{fcntl::OFlag, sys::stat::Mode};

use crate::spec::{LaunchSpec, SandboxMode};

#[derive(Debug, thiserror::Error)]
pub enum ConfinementError {
    #[error("{path}: {source}")]
    Path { path: PathBuf, source: io::Error },
    #[error("Landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    #[error("Landlock is not enforced by this kernel; refusing to run unconfined")]
    NotEnforced,
}

/// Devices any program needs to write to (and ioctl, for terminals).
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
    "/dev/shm",
];

/// The Landlock ABI version this kernel offers (0: none). The launcher, `warden doctor` and
/// the session's layer list all ask here, so that they agree.
pub fn landlock_abi() -> u32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: the documented way to query the ABI: NULL attributes, size 0, version flag.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(abi).unwrap_or(0)
}

/// The ABI whose file-system rights Warden handles (Linux 6.10+); older kernels get what they
/// support, newer rights stay unhandled (allowed).
const FS_ABI: ABI = ABI::V5;

fn path_err(path: &Path) -> impl FnOnce(io::Error) -> ConfinementError + '_ {
    move |source| ConfinementError::Path {
        path: path.to_path_buf(),
        source,
    }
}

/// Paths that together cover `root` and everything beneath it except `excluded` (canonical
/// paths) and what lies beneath them.
pub fn cover(root: &Path, excluded: &BTreeSet<PathBuf>) -> io::Result<Vec<PathBuf>> {
    if excluded.iter().any(|e| root.starts_with(e)) {
        return Ok(Vec::new());
    }
    if !excluded.iter().any(|e| e.starts_with(root)) {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut entries = Vec::new();
    match std::fs::read_dir(root) {
        Ok(dir) => {
            for entry in dir {
                match entry {
                    Ok(e) => entries.push(e),
                    Err(e) if vanished(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        // Removed while we walked (see `vanished`).
        Err(e) if vanished(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        // Only a real directory can be split; a symlink is covered (or not) as itself.
        match entry.file_type() {
            Ok(t) if t.is_dir() => out.extend(cover(&path, excluded)?),
            Ok(_) if !excluded.contains(&path) => out.push(path),
            Ok(_) => {}
            Err(e) if vanished(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// A path that disappeared between being listed and being opened: other processes create and
/// remove files beside the protected paths (temporary files in $HOME) while the launcher
/// walks around them. It is left out of the rules, which fails closed: whatever appears there
/// later is not readable.
fn vanished(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// Grants `rights` beneath each of `paths` that still exists.
fn grant(
    mut ruleset: RulesetCreated,
    paths: Vec<PathBuf>,
    rights: BitFlags<AccessFs>,
) -> Result<RulesetCreated, ConfinementError> {
    for path in paths {
        match open_path(&path) {
            Ok(fd) => ruleset = ruleset.add_rule(PathBeneath::new(fd, rights))?,
            Err(ConfinementError::Path { source, .. }) if vanished(&source) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ruleset)
}

/// Opens a path for a Landlock rule without following a final symlink.
fn open_path(path: &Path) -> Result<OwnedFd, ConfinementError> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| path_err(path)(e.into()))
}

/// Builds the ruleset (as root, so that every path can be opened); enforce it with
/// `enforce` once privileges are dropped. `None`: nothing for Landlock to do (full access on
/// a kernel without scoping, Landlock ABI below 6).
pub fn build(spec: &LaunchSpec) -> Result<Option<RulesetCreated>, ConfinementError> {
    if spec.mode == SandboxMode::DangerFullAccess
        && landlock_abi() < crate::syscall_filter::LANDLOCK_SCOPE_ABI
    {
        return Ok(None);
    }
    let scoped = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        // Signals and abstract Unix sockets reach only processes of this sandbox: the
        // supervisor cannot be signalled even by an agent running as root.
        .scope(Scope::Signal | Scope::AbstractUnixSocket)?;
    if spec.mode == SandboxMode::DangerFullAccess {
        return Ok(Some(scoped.create()?));
    }
    let all = AccessFs::from_all(FS_ABI);
    let read = AccessFs::from_read(FS_ABI);
    let mut ruleset = scoped.handle_access(all)?.create()?;
    let denied: BTreeSet<PathBuf> = spec
        .denied_paths
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    // /dev is readable only where DEVICES says: a block device holds every protected file's
    // blocks, /dev/mem and /dev/kmsg the kernel's memory and log (open to an agent run as
    // root, whose file permissions do not stop it).
    let unreadable: BTreeSet<PathBuf> = denied
        .iter()
        .cloned()
        .chain(std::iter::once(PathBuf::from("/dev")))
        .collect();
    let readable = cover(Path::new("/"), &unreadable).map_err(path_err(Path::new("/")))?;
    ruleset = grant(ruleset, readable, read)?;
    ruleset = ruleset.add_rule(PathBeneath::new(
        open_path(Path::new("/"))?,
        AccessFs::ReadDir,
    ))?;
    let device_rights = read | AccessFs::WriteFile | AccessFs::IoctlDev;
    for dev in DEVICES.iter().map(Path::new).filter(|p| p.exists()) {
        let rights = if dev == Path::new("/dev/shm") {
            all
        } else {
            device_rights
        };
        ruleset = ruleset.add_rule(PathBeneath::new(open_path(dev)?, rights))?;
    }
    if spec.mode == SandboxMode::WorkspaceWrite {
        let not_writable: BTreeSet<PathBuf> = denied
            .iter()
            .cloned()
            .chain(
                spec.read_only_paths
                    .iter()
                    .filter_map(|p| std::fs::canonicalize(p).ok()),
            )
            .collect();
        for root in &spec.write_roots {
            let Ok(root) = std::fs::canonicalize(root) else {
                continue;
            };
            let writable = cover(&root, &not_writable).map_err(path_err(&root))?;
            ruleset = grant(ruleset, writable, all)?;
        }
    }
    Ok(Some(ruleset))
}

/// Enforces the ruleset on this process and everything it will exec. Needs no_new_privs.
pub fn enforce(ruleset: RulesetCreated) -> Result<RulesetStatus, ConfinementError> {
    let status = ruleset.restrict_self()?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err(ConfinementError::NotEnforced);
    }
    Ok(status.ruleset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_removed_during_the_walk_is_left_out() {
        let d = tempfile::tempdir().unwrap();
        let kept = d.path().join("kept");
        std::fs::write(&kept, "").unwrap();
        let ruleset = Ruleset::default()
            .handle_access(AccessFs::from_all(ABI::V1))
            .unwrap()
            .create()
            .unwrap();
        let read = AccessFs::from_read(ABI::V1);
        let paths = vec![kept.clone(), d.path().join("gone")];
        assert!(grant(ruleset, paths, read).is_ok());
        // Other errors still stop the launcher.
        let ruleset = Ruleset::default()
            .handle_access(AccessFs::from_all(ABI::V1))
            .unwrap()
            .create()
            .unwrap();
        let looped = d.path().join("loop");
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        let through = looped.join("x");
        assert!(grant(ruleset, vec![kept, through], read).is_err());
    }

    #[test]
    fn covers_everything_but_the_excluded_paths() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        for p in ["home/u/.ssh", "home/u/project/src", "home/v", "etc"] {
            std::fs::create_dir_all(root.join(p)).unwrap();
        }
        std::fs::write(root.join("home/u/.bashrc"), "").unwrap();
        std::os::unix::fs::symlink(root.join("home/u/.ssh"), root.join("home/u/link")).unwrap();
        let excluded: BTreeSet<PathBuf> = [root.join("home/u/.ssh")].into();
        let got = cover(&root, &excluded).unwrap();
        let rel: Vec<String> = got
            .iter()
            .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
            .collect();
        assert_eq!(
            rel,
            [
                "etc",
                "home/u/.bashrc",
                "home/u/link",
                "home/u/project",
                "home/v"
            ]
        );
        assert_eq!(
            cover(&root.join("etc"), &excluded).unwrap(),
            [root.join("etc")]
        );
        assert!(
            cover(&root.join("home/u/.ssh/x"), &excluded)
                .unwrap()
                .is_empty()
        );
    }
}
