//! The file the kernel will run for an approved exec, as the exec tracepoint can check it:
//! the name of its dentry and, where user space sees the kernel's own number, its inode.
//!
//! Threat: between the gate's check and the kernel's exec the agent swaps what runs (renames
//! another file over the approved one, rewrites a script's `#!` line). The token's path and
//! arguments stay the same; the file does not.
use std::{
    ffi::OsStr,
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::{Path, PathBuf},
};

/// File systems whose `stat` reports the kernel inode's own `i_ino` (overlayfs and network
/// file systems may report another number, so only the name is checked there).
const SAME_INODE_NUMBERS: &[i64] = &[
    0xEF53,      // ext2, ext3, ext4
    0x5846_5342, // xfs
    0x0102_1994, // tmpfs, and memfd files
    0x9123_683E, // btrfs
];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExeIdentity {
    pub name: Vec<u8>,
    /// 0: not checked.
    pub ino: u64,
}

/// A file opened (O_PATH) for the gate: the kernel's one lookup of it, what `/proc/self/fd`
/// says its path is, and its status. The gate's checks share it rather than look it up again
/// (each system call of the supervisor pays the syscall tracepoints too).
pub struct Opened {
    pub fd: OwnedFd,
    pub resolved: Option<PathBuf>,
    pub st: Option<nix::sys::stat::FileStat>,
}

impl Opened {
    pub fn open(path: &Path) -> Option<Self> {
        let fd = nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()?;
        let resolved = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok();
        let st = nix::sys::stat::fstat(&fd).ok();
        Some(Self { fd, resolved, st })
    }

    /// `/proc/self/fd/N` of it, to open it for reading.
    pub fn fd_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

/// The identity of the file at `path`; None when it cannot be opened (the exec then gets an
/// identity no file has: it is killed if the kernel runs something after all).
pub fn of(path: &Path) -> Option<ExeIdentity> {
    of_opened(&Opened::open(path)?)
}

pub fn of_opened(opened: &Opened) -> Option<ExeIdentity> {
    let (link, st) = (opened.resolved.as_ref()?, opened.st.as_ref()?);
    let name = dentry_name(link, st.st_ino);
    let fs = nix::sys::statfs::fstatfs(&opened.fd).ok()?;
    let ino = if SAME_INODE_NUMBERS.contains(&(fs.filesystem_type().0 as i64)) {
        st.st_ino
    } else {
        0
    };
    Some(ExeIdentity { name, ino })
}

/// The last component of `link` (what /proc/self/fd shows), without the ` (deleted)` that
/// the kernel appends for a file no longer (or never, like a memfd) in the tree: the dentry's
/// name has no such suffix. A file really named `x (deleted)` exists under that name.
fn dentry_name(link: &Path, ino: u64) -> Vec<u8> {
    let base = link.file_name().map(OsStr::as_bytes).unwrap_or_default();
    match base.strip_suffix(b" (deleted)") {
        Some(stripped) if !same_file(link, ino) => stripped.to_vec(),
        _ => base.to_vec(),
    }
}

fn same_file(path: &Path, ino: u64) -> bool {
    nix::sys::stat::stat(path).is_ok_and(|st| st.st_ino == ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_dentrys() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("x (deleted)");
        std::fs::write(&real, "").unwrap();
        let ino = nix::sys::stat::stat(&real).unwrap().st_ino;
        assert_eq!(dentry_name(&real, ino), b"x (deleted)");
        assert_eq!(
            dentry_name(Path::new("/memfd:innocent (deleted)"), 7),
            b"memfd:innocent"
        );
        assert_eq!(dentry_name(Path::new("/usr/bin/dash"), 7), b"dash");
    }

    #[test]
    fn the_identity_follows_symlinks_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tool");
        std::fs::write(&file, "").unwrap();
        let link = dir.path().join("alias");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let id = of(&link).unwrap();
        assert_eq!(id.name, b"tool");
        let fs = nix::sys::statfs::statfs(dir.path()).unwrap();
        if SAME_INODE_NUMBERS.contains(&(fs.filesystem_type().0 as i64)) {
            assert_eq!(id.ino, nix::sys::stat::stat(&file).unwrap().st_ino);
        } else {
            assert_eq!(id.ino, 0);
        }
    }
}
