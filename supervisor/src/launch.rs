//! Starting the supervised command: inside the session cgroup from its first instruction, as
//! the target user, with the terminal passed through.
use std::{ffi::OsString, io, os::fd::AsRawFd};

use tokio::process::{Child, Command};

use crate::{cgroup::SessionCgroup, target_user::TargetUser};

pub fn spawn(argv: &[OsString], user: &TargetUser, cgroup: &SessionCgroup) -> io::Result<Child> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command given"))?;
    let procs = cgroup.procs_for_writing().map_err(io::Error::other)?;
    let mut cmd = Command::new(program);
    cmd.args(args).kill_on_drop(false);
    if user.uid != nix::unistd::Uid::current().as_raw() {
        cmd.env("HOME", &user.home)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name);
    }
    let (uid, gid, groups) = (user.uid, user.gid, user.groups.clone());
    // SAFETY: between fork and exec the closure only makes async-signal-safe system calls
    // (write, setgroups, setgid, setuid, sigprocmask, signal) on memory allocated before the
    // fork.
    unsafe {
        cmd.pre_exec(move || {
            // Warden blocks the session signals (to read them from a signalfd) and Rust's
            // runtime ignores SIGPIPE; std's spawn passes both on, so undo them here.
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            if libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            // Join the session first, while still root: from here on every fork and exec of
            // this process tree is in scope.
            if libc::write(procs.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                return Err(io::Error::last_os_error());
            }
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}
