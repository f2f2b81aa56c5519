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
    ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, Ruleset, RulesetAttr,
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
    let mut entries: Vec<_> = std::fs::read_dir(root)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        // Only a real directory can be split; a symlink is covered (or not) as itself.
        if entry.file_type()?.is_dir() {
            out.extend(cover(&path, excluded)?);
        } else if !excluded.contains(&path) {
            out.push(path);
        }
    }
    Ok(out)
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
    for path in cover(Path::new("/"), &denied).map_err(path_err(Path::new("/")))? {
        ruleset = ruleset.add_rule(PathBeneath::new(open_path(&path)?, read))?;
    }
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
            for path in cover(&root, &not_writable).map_err(path_err(&root))? {
                ruleset = ruleset.add_rule(PathBeneath::new(open_path(&path)?, all))?;
            }
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
