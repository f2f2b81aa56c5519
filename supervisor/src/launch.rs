//! Starting the supervised command: `warden-launcher` starts in the session cgroup (so every
//! fork and exec from its first instruction is in scope), confines itself, drops to the target
//! user, hands back its seccomp listener and execs the command. The terminal is passed through.
use std::{
    ffi::OsString,
    io::{self, Write},
    os::fd::{AsFd, AsRawFd, OwnedFd},
    path::PathBuf,
};

use nix::{
    fcntl::{FcntlArg, OFlag, fcntl},
    sys::socket::{AddressFamily, SockFlag, SockType, socketpair},
};
use tokio::process::{Child, Command};
use warden_agent::{
    fd_passing,
    spec::{LaunchSpec, NOTIFY_SOCKET_FD, SPEC_FD},
};

use crate::{cgroup::SessionCgroup, target_user::TargetUser};

pub struct Launched {
    pub child: Child,
    /// The seccomp listener, or `None` when the launcher failed before confining the command
    /// (it printed why and exits with 126 or 127).
    pub listener: Option<OwnedFd>,
}

/// The launcher binary, installed next to `warden`.
pub fn launcher_path() -> io::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name("warden-launcher");
    if path.is_file() {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} is missing (it is built and installed with warden)",
                path.display()
            ),
        ))
    }
}

/// A copy of `fd` numbered 10 or more, so that moving it to 3 or 4 in the child cannot
/// clobber the other one.
pub(crate) fn high(fd: &impl AsFd) -> io::Result<OwnedFd> {
    let raw = fcntl(fd.as_fd(), FcntlArg::F_DUPFD_CLOEXEC(10))?;
    // SAFETY: fcntl just returned this new descriptor, which nothing else owns.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(raw) })
}

/// The command's environment.
pub struct Environment<'a> {
    /// Where it starts from, when not Warden's own (the service's client's).
    pub base: Option<&'a [(OsString, OsString)]>,
    /// Set by Warden.
    pub set: &'a [(&'a str, &'a std::ffi::OsStr)],
    /// Inherited names it does not get.
    pub removed: &'a [OsString],
}

/// Starts the launcher in `cgroup`; `own_group`: the command leads a process group of its
/// own (the service's sessions, whose client passes terminal signals on to that group).
pub async fn spawn(
    argv: &[OsString],
    user: &TargetUser,
    cgroup: &SessionCgroup,
    spec: &LaunchSpec,
    env: Environment<'_>,
    own_group: bool,
) -> io::Result<Launched> {
    if argv.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no command given",
        ));
    }
    let procs = cgroup.procs_for_writing().map_err(io::Error::other)?;
    let extra_procs = cgroup.extra_procs_for_writing().map_err(io::Error::other)?;
    let (spec_read, spec_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    std::fs::File::from(spec_write).write_all(&serde_json::to_vec(spec)?)?;
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    let (spec_fd, sock_fd) = (high(&spec_read)?, high(&theirs)?);
    drop((spec_read, theirs));

    let mut cmd = Command::new(launcher_path()?);
    cmd.args(argv).kill_on_drop(false);
    // Removed first: a variable Warden sets (a credential's placeholder) may have the name of
    // an inherited one it removes.
    if let Some(base) = env.base {
        cmd.env_clear().envs(base.iter().map(|(k, v)| (k, v)));
    }
    for name in env.removed {
        cmd.env_remove(name);
    }
    cmd.envs(env.set.iter().copied());
    if own_group {
        cmd.process_group(0);
    }
    if user.uid != nix::unistd::Uid::current().as_raw() {
        cmd.env("HOME", &user.home)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name);
    }
    let (spec_raw, sock_raw) = (spec_fd.as_raw_fd(), sock_fd.as_raw_fd());
    // SAFETY: between fork and exec the closure only makes async-signal-safe system calls
    // (write, dup2, sigprocmask) on memory allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            // Join the session first: from here on every fork and exec is in scope.
            for f in &extra_procs {
                if libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::write(procs.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1
                || libc::dup2(spec_raw, SPEC_FD) < 0
                || libc::dup2(sock_raw, NOTIFY_SOCKET_FD) < 0
            {
                return Err(io::Error::last_os_error());
            }
            // (The launcher resets SIGPIPE itself.)
            crate::signals::unblock_in_child()
        });
    }
    let child = cmd.spawn()?;
    drop((spec_fd, sock_fd));
    // The launcher sends the listener once confined, or exits (closing the socket) on failure.
    let listener = tokio::task::spawn_blocking(move || fd_passing::recv_fd(ours.as_fd()))
        .await
        .map_err(io::Error::other)??;
    Ok(Launched { child, listener })
}
