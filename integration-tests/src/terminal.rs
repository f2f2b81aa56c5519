//! Pseudo-terminals for the tests that play a person at a terminal.
use std::{
    io::Read as _,
    os::unix::process::CommandExt as _,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Runs `cmd` as the leader of a new session whose controlling terminal is a new
/// pseudo-terminal; returns the child and the terminal's master side.
pub fn in_a_terminal_session(mut cmd: Command) -> (Child, std::fs::File) {
    let (master, slave) = pty();
    let fd = |f: &std::os::fd::OwnedFd| Stdio::from(f.try_clone().unwrap());
    cmd.stdin(fd(&slave)).stdout(fd(&slave)).stderr(fd(&slave));
    // SAFETY: setsid and TIOCSCTTY between fork and exec, on the inherited stdin.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(slave);
    (child, std::fs::File::from(master))
}

/// A new pseudo-terminal: its master and slave sides, both close-on-exec, so that only the
/// test holds the master (closing it hangs the terminal up) whatever other tests spawn.
pub fn pty() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use nix::{fcntl::OFlag, pty::*, sys::stat::Mode};
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = posix_openpt(flags).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let slave = nix::fcntl::open(ptsname_r(&master).unwrap().as_str(), flags, Mode::empty());
    (master.into(), slave.unwrap())
}

/// Reads the terminal until `text` appears after byte `from` of what was read.
pub fn read_until(master: &mut std::fs::File, seen: &mut String, from: usize, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 4096];
    while !seen[from..].contains(text) {
        assert!(
            Instant::now() < deadline,
            "no {text:?} on the terminal:\n{seen}"
        );
        match master.read(&mut buf) {
            Ok(0) | Err(_) => panic!("the terminal closed before {text:?}:\n{seen}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
}
