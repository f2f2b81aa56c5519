//! The command's private mount namespace, set up by the launcher as root before Landlock and
//! before privileges are dropped.
//!
//! Threats:
//! - code planted in a write root for later, such as VCS hooks and config that the user's next
//!   `git commit` outside Warden would run. Landlock cannot carve a read-only hole out of a
//!   writable tree, but a read-only bind mount can. A mount point also cannot be renamed or
//!   removed (EBUSY), which pins the directories on the way to what is protected.
//! - host services on pathname UNIX sockets. The kernel's connect_unix check decides on
//!   spellings, so the session's own sockets need a place where a spelling cannot be
//!   redirected: a tmpfs mounted `nosymfollow` (no link is followed in it) that only this
//!   namespace sees. The user's runtime directory (/run/user/UID: the D-Bus session bus,
//!   gpg-agent, Wayland, the user's systemd) is covered by an empty read-only tmpfs, which also
//!   holds on kernels without the connect_unix hook.
//!
//! The mounts are only seen by the session's processes: `/` is made a recursive slave first,
//! so nothing propagates back out. The agent cannot undo them: the seccomp filter refuses
//! every mount call (`mount`, `umount2`, `open_tree`, `move_mount`, `mount_setattr`,
//! `fsopen`..., `pivot_root`, `setns`) and new user namespaces; `unshare(CLONE_NEWNS)` needs
//! CAP_SYS_ADMIN, which the dropped user lacks.
use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use nix::{
    fcntl::{OFlag, OpenHow, ResolveFlag},
    mount::MsFlags,
    sched::CloneFlags,
    sys::stat::Mode,
};

use crate::spec::MountOp;

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("a private mount namespace: {0}")]
    Namespace(io::Error),
    #[error("{}: {what}: {source}", path.display())]
    Path {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
}

// The new mount API's flags (linux/mount.h); stable kernel ABI since 5.2 (5.12 for
// mount_setattr).
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const MOUNT_ATTR_RDONLY: u64 = 1;

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// The mounts of a session, applied in order: an ancestor before what lies beneath it (a
/// later mount is made inside the earlier one).
#[derive(Clone, Debug, Default)]
pub struct MountPlan {
    ops: Vec<MountOp>,
}

impl MountPlan {
    pub fn new(ops: Vec<MountOp>) -> Self {
        Self { ops }
    }

    /// Enters a new mount namespace and applies every operation; returns how long it took.
    /// Nothing to do: no namespace. Any error leaves the launcher to stop (the command never
    /// runs half-protected).
    pub fn apply(&self) -> Result<Duration, MountError> {
        let started = Instant::now();
        if self.ops.is_empty() {
            return Ok(started.elapsed());
        }
        nix::sched::unshare(CloneFlags::CLONE_NEWNS)
            .map_err(|e| MountError::Namespace(e.into()))?;
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&str>,
        )
        .map_err(|e| MountError::Namespace(e.into()))?;
        for op in &self.ops {
            match op {
                MountOp::BindSelf { path, read_only } => bind_self(path, *read_only)?,
                MountOp::SocketDir { path, uid, gid } => socket_dir(path, *uid, *gid)?,
                MountOp::Hide { path } => hide(path)?,
            }
        }
        Ok(started.elapsed())
    }
}

fn path_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> MountError + 'a {
    move |source| MountError::Path {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// Opens `path` (absolute) so that no symlink anywhere on it is followed: a link swapped in
/// by another process of the user between the supervisor's listing and this call makes the
/// launch fail instead of redirecting the mount. From the descriptor on, nothing is looked up
/// by name again.
fn open_no_symlinks(path: &Path) -> io::Result<OwnedFd> {
    if !path.is_absolute() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not an absolute path",
        ));
    }
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .mode(Mode::empty())
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    let fd = nix::fcntl::openat2(nix::fcntl::AT_FDCWD, path, how)?;
    // O_PATH|O_NOFOLLOW opens a final symlink itself rather than failing.
    let st = nix::sys::stat::fstat(&fd)?;
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    Ok(fd)
}

/// Binds `path` onto itself, read-only if asked, through descriptors only: `open_tree` clones
/// the mount at the descriptor (with the mounts beneath it), `mount_setattr` sets read-only on
/// the clone and changes no other flag (nosuid, nodev, noexec stay as they were), and
/// `move_mount` attaches it at the same descriptor.
fn bind_self(path: &Path, read_only: bool) -> Result<(), MountError> {
    let target = open_no_symlinks(path).map_err(path_err(path, "opening"))?;
    // SAFETY: open_tree with an empty path on our own descriptor; returns a new descriptor.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            target.as_raw_fd(),
            c"".as_ptr(),
            OPEN_TREE_CLONE
                | libc::O_CLOEXEC as libc::c_uint
                | libc::AT_EMPTY_PATH as libc::c_uint
                | libc::AT_RECURSIVE as libc::c_uint,
        )
    };
    if tree < 0 {
        return Err(path_err(path, "open_tree")(io::Error::last_os_error()));
    }
    // SAFETY: the kernel just returned this descriptor, which nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as i32) };
    if read_only {
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        // SAFETY: attr lives across the call and its size is passed with it.
        let r = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                tree.as_raw_fd(),
                c"".as_ptr(),
                (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        };
        if r < 0 {
            return Err(path_err(path, "mount_setattr")(io::Error::last_os_error()));
        }
    }
    // SAFETY: both descriptors are ours and stay open across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(path_err(path, "move_mount")(io::Error::last_os_error()));
    }
    // Checked, not assumed: the mount now at the path is the read-only one.
    if read_only {
        let now = open_no_symlinks(path).map_err(path_err(path, "reopening"))?;
        let st =
            nix::sys::statvfs::fstatvfs(&now).map_err(|e| path_err(path, "statvfs")(e.into()))?;
        if !st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
            return Err(path_err(path, "checking")(io::Error::other(
                "still writable after the read-only bind",
            )));
        }
    }
    Ok(())
}

/// Flags of every tmpfs the plan mounts.
const QUIET: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);
/// MS_NOSYMFOLLOW (Linux 5.10), which nix does not name.
const NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

// These two mount by path: every directory on their paths is root's (the socket directory's
// parent is Warden's; /run/user is root's), so no other process can swap a link in.
fn tmpfs(path: &Path, flags: MsFlags, options: &str) -> Result<(), MountError> {
    nix::mount::mount(Some("warden"), path, Some("tmpfs"), flags, Some(options))
        .map_err(|e| path_err(path, "mounting a tmpfs")(e.into()))
}

fn socket_dir(path: &Path, uid: u32, gid: u32) -> Result<(), MountError> {
    let options = format!("mode=0700,uid={uid},gid={gid},size=16m,nr_inodes=4096");
    tmpfs(path, QUIET | NOSYMFOLLOW, &options)
}

fn hide(path: &Path) -> Result<(), MountError> {
    tmpfs(
        path,
        QUIET | MsFlags::MS_RDONLY,
        "mode=0555,size=4k,nr_inodes=16",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_path_through_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("config"), "").unwrap();
        std::os::unix::fs::symlink(&real, d.path().join("link")).unwrap();
        assert!(open_no_symlinks(&real.join("config")).is_ok());
        let through = open_no_symlinks(&d.path().join("link/config")).unwrap_err();
        assert_eq!(through.raw_os_error(), Some(libc::ELOOP));
        let last = open_no_symlinks(&d.path().join("link")).unwrap_err();
        assert_eq!(last.raw_os_error(), Some(libc::ELOOP));
        assert!(open_no_symlinks(Path::new("relative")).is_err());
    }

    #[test]
    fn an_empty_plan_makes_no_namespace() {
        let before = std::fs::read_link("/proc/self/ns/mnt").unwrap();
        MountPlan::default().apply().unwrap();
        assert_eq!(std::fs::read_link("/proc/self/ns/mnt").unwrap(), before);
    }
}
