//! Who is at the other end of a Unix socket: the kernel's credentials of the peer
//! (SO_PEERCRED), pinned with a pidfd so that a recycled pid cannot pass for it, and whether it
//! is a process of a Warden session (which must not act for the person: approve its own
//! requests, or start a session outside its own).
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The peer's credentials when it connected.
pub struct Peer {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
    pidfd: Option<OwnedFd>,
}

impl Peer {
    pub fn of(socket: &impl AsRawFd) -> std::io::Result<Self> {
        let cred = nix::sys::socket::getsockopt(
            // SAFETY: borrowed for the call only; the caller keeps the socket open.
            &unsafe { std::os::fd::BorrowedFd::borrow_raw(socket.as_raw_fd()) },
            nix::sys::socket::sockopt::PeerCredentials,
        )?;
        Ok(Self {
            pid: cred.pid() as u32,
            uid: cred.uid(),
            gid: cred.gid(),
            pidfd: pidfd(socket.as_raw_fd()),
        })
    }

    /// A peer known by its numbers only (tests): its pid is not pinned.
    #[cfg(test)]
    pub fn assumed(pid: u32, uid: u32, gid: u32) -> Self {
        Self {
            pid,
            uid,
            gid,
            pidfd: None,
        }
    }

    /// The peer's cgroups, read while the peer is provably the process that connected.
    pub fn cgroups(&self) -> Result<String, String> {
        let cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", self.pid))
            .map_err(|e| format!("cannot check the peer's cgroup: {e}"))?;
        if !self.alive() {
            return Err("the peer exited before it could be checked".into());
        }
        Ok(cgroups)
    }

    /// Whether the peer is a process of a Warden session (refusing too much fails closed).
    pub fn in_a_session(&self) -> Result<bool, String> {
        self.cgroups().map(|c| in_a_session(&c))
    }

    /// The peer's current directory, opened through the kernel's own link to it (no path is
    /// looked up, so no symlink can redirect it), with the path the kernel gives it.
    pub fn cwd(&self) -> Result<(OwnedFd, std::path::PathBuf), String> {
        let link = format!("/proc/{}/cwd", self.pid);
        let fd = nix::fcntl::open(
            link.as_str(),
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| format!("cannot open the client's current directory: {e}"))?;
        let path = std::fs::read_link(&link)
            .map_err(|e| format!("cannot read the client's current directory: {e}"))?;
        if !self.alive() {
            return Err("the peer exited before it could be checked".into());
        }
        Ok((fd, path))
    }

    /// The peer's groups (real, effective and supplementary), from /proc.
    pub fn groups(&self) -> Vec<u32> {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let mut groups: Vec<u32> = status
            .lines()
            .filter(|l| l.starts_with("Gid:") || l.starts_with("Groups:"))
            .flat_map(|l| l.split_whitespace().skip(1))
            .filter_map(|g| g.parse().ok())
            .collect();
        if !self.alive() {
            groups.clear();
        }
        groups
    }

    /// The pid still names the peer (kernels without pidfds: assumed).
    fn alive(&self) -> bool {
        let Some(fd) = &self.pidfd else { return true };
        // SAFETY: pidfd_send_signal with signal 0 only checks; the fd is ours.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                0,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        r == 0
    }
}

/// Whether /proc/PID/cgroup text places the process in a Warden session. Sessions live in
/// `<cgroup root>/warden/<id>`, wherever that root is mounted or delegated: any `warden`
/// component of the cgroup v2 path counts (refusing too much fails closed).
pub fn in_a_session(cgroups: &str) -> bool {
    cgroups.lines().any(|l| {
        l.split_once("::")
            .is_some_and(|(_, path)| path.split('/').any(|c| c == crate::cgroup::PARENT))
    })
}

/// The peer's pidfd (Linux 6.5+), or None on older kernels.
fn pidfd(socket: i32) -> Option<OwnedFd> {
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `fd`.
    let r = unsafe {
        libc::getsockopt(
            socket,
            libc::SOL_SOCKET,
            libc::SO_PEERPIDFD,
            (&mut fd as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    // SAFETY: the kernel just gave us this descriptor.
    (r == 0 && fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_any_warden_component_of_the_v2_path() {
        for (text, inside) in [
            ("0::/warden/0193-abc\n", true),
            ("0::/user.slice/warden/x\n", true),
            ("0::/system.slice/wardend.service\n", false),
            ("0::/user.slice/user-1000.slice\n", false),
            ("12:pids:/warden/x\n0::/\n", false),
            ("12:pids:/\n0::/warden/01a2-33\n", true),
            ("0::/user.slice/warden/01a2-33/child\n", true),
            ("0::/wardenish/x\n5:cpu:/warden/x\n", false),
        ] {
            assert_eq!(in_a_session(text), inside, "{text}");
        }
    }

    #[test]
    fn the_peer_of_a_socketpair_is_this_process() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let peer = Peer::of(&a).unwrap();
        assert_eq!(peer.pid, std::process::id());
        assert_eq!(peer.uid, nix::unistd::Uid::current().as_raw());
        assert!(
            peer.groups()
                .contains(&nix::unistd::Gid::current().as_raw())
        );
        assert_eq!(peer.in_a_session(), Ok(false));
    }
}
