//! Requirements files can be trusted only if no one but root can change them: the file and
//! every directory above it must be owned by root and writable by no group or other user.
//!
//! The path is walked from `/` one component at a time with `openat(O_NOFOLLOW)`, and each
//! opened descriptor is checked with `fstat`. Nothing is looked up twice by name, so a path
//! swapped between the check and the read (a symlink swap) cannot slip through: a symlink
//! anywhere on the way is refused, and the file returned is the very one that was checked.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// Who may own requirements files and the directories above them. The default trusts root
/// alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrustPolicy {
    /// Besides root (always trusted, as it could change anything anyway), the one uid allowed
    /// to own the path: 0 unless a test needs another.
    pub owner_uid: u32,
}

/// Why a path cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityFailure {
    #[error("does not exist")]
    Missing,
    #[error("is a symbolic link (refused: a link can be swapped to point elsewhere)")]
    Symlink,
    #[error("is owned by uid {uid}, must be owned by root{}", other_owner(*.trusted))]
    WrongOwner { uid: u32, trusted: u32 },
    #[error("is writable by its group (mode {mode:04o}); run chmod g-w")]
    GroupWritable { mode: u32 },
    #[error("is writable by other users (mode {mode:04o}); run chmod o-w")]
    OtherWritable { mode: u32 },
    #[error("is not a regular file")]
    NotRegularFile,
    #[error("is not a directory")]
    NotADirectory,
    #[error("is not an absolute path without `..`")]
    NotAbsolute,
    #[error("cannot be opened: {0}")]
    Io(#[source] io::Error),
}

fn other_owner(trusted: u32) -> String {
    if trusted == 0 {
        String::new()
    } else {
        format!(" or uid {trusted}")
    }
}

/// A path that cannot be trusted, and why.
#[derive(Debug, thiserror::Error)]
pub struct IntegrityError {
    /// The offending path: the file itself, or the directory above it that fails.
    pub path: PathBuf,
    pub failure: IntegrityFailure,
}

impl fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path.display(), self.failure)
    }
}

impl IntegrityError {
    pub fn is_missing(&self) -> bool {
        matches!(self.failure, IntegrityFailure::Missing)
    }
}

/// Checks `path` with the default policy (root only), as Warden does at start.
pub fn check_file(path: &Path) -> Result<(), IntegrityError> {
    open_trusted(path, &TrustPolicy::default()).map(drop)
}

/// Opens the regular file at `path` after checking it and every directory above it.
pub fn open_trusted(path: &Path, policy: &TrustPolicy) -> Result<File, IntegrityError> {
    walk(path, policy, Want::File).map(File::from)
}

/// Checks the directory at `path` and every directory above it.
pub fn check_dir(path: &Path, policy: &TrustPolicy) -> Result<(), IntegrityError> {
    walk(path, policy, Want::Dir).map(drop)
}

/// Reads the file at `path` through [`open_trusted`].
pub fn read_trusted(path: &Path, policy: &TrustPolicy) -> Result<Vec<u8>, IntegrityError> {
    let mut bytes = Vec::new();
    open_trusted(path, policy)?
        .read_to_end(&mut bytes)
        .map_err(|e| IntegrityError {
            path: path.to_owned(),
            failure: IntegrityFailure::Io(e),
        })?;
    Ok(bytes)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    File,
    Dir,
}

fn walk(path: &Path, policy: &TrustPolicy, want: Want) -> Result<OwnedFd, IntegrityError> {
    let fail = |at: &Path, failure| IntegrityError {
        path: at.to_owned(),
        failure,
    };
    let mut names = Vec::new();
    for (i, part) in path.components().enumerate() {
        match part {
            Component::RootDir if i == 0 => {}
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            _ => return Err(fail(path, IntegrityFailure::NotAbsolute)),
        }
    }
    if !path.has_root() {
        return Err(fail(path, IntegrityFailure::NotAbsolute));
    }

    let mut at = PathBuf::from("/");
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut fd =
        rustix::fs::open("/", dir_flags, Mode::empty()).map_err(|e| fail(&at, open_failure(e)))?;
    check_stat(&fd, &at, policy, names.is_empty() && want == Want::File)?;

    for (i, name) in names.iter().enumerate() {
        at.push(name);
        let last_file = i + 1 == names.len() && want == Want::File;
        // NONBLOCK: opening a FIFO planted there must not hang Warden.
        let flags = if last_file {
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC
        } else {
            dir_flags
        };
        let next = rustix::fs::openat(&fd, *name, flags, Mode::empty()).map_err(|e| {
            // O_NOFOLLOW reports a link as ELOOP, or ENOTDIR with O_DIRECTORY; ask the
            // directory we hold to tell which.
            let is_link = rustix::fs::statat(&fd, *name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
            fail(
                &at,
                if is_link {
                    IntegrityFailure::Symlink
                } else {
                    open_failure(e)
                },
            )
        })?;
        check_stat(&next, &at, policy, last_file)?;
        fd = next;
    }
    Ok(fd)
}

fn open_failure(e: Errno) -> IntegrityFailure {
    match e {
        Errno::NOENT => IntegrityFailure::Missing,
        Errno::NOTDIR => IntegrityFailure::NotADirectory,
        Errno::LOOP => IntegrityFailure::Symlink,
        e => IntegrityFailure::Io(e.into()),
    }
}

fn check_stat(
    fd: &OwnedFd,
    at: &Path,
    policy: &TrustPolicy,
    regular_file: bool,
) -> Result<(), IntegrityError> {
    let fail = |failure| IntegrityError {
        path: at.to_owned(),
        failure,
    };
    let st: Stat = rustix::fs::fstat(fd).map_err(|e| fail(IntegrityFailure::Io(e.into())))?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if regular_file && kind != FileType::RegularFile {
        return Err(fail(IntegrityFailure::NotRegularFile));
    }
    if !regular_file && kind != FileType::Directory {
        return Err(fail(IntegrityFailure::NotADirectory));
    }
    if st.st_uid != 0 && st.st_uid != policy.owner_uid {
        return Err(fail(IntegrityFailure::WrongOwner {
            uid: st.st_uid,
            trusted: policy.owner_uid,
        }));
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o020 != 0 {
        return Err(fail(IntegrityFailure::GroupWritable { mode }));
    }
    if mode & 0o002 != 0 {
        return Err(fail(IntegrityFailure::OtherWritable { mode }));
    }
    Ok(())
}
