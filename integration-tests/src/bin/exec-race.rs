//! Escape attempt: swap an exec's argument from a second thread between the exec gate's check
//! and the kernel's copy. Each of N attempts forks a child that execs `/bin/echo <arg>` while
//! another of its threads flips <arg> between `allowed` and `FORBIDN` (the session forbids
//! `echo FORBIDN`). Prints how each attempt ended:
//!   ran_allowed=… ran_forbidden=… killed=… denied=…
//! `ran_forbidden` above 0 means the race was won: the forbidden command ran.
//!
//! `exec-race N interp DIR`: the same race on a script's `#!` line instead. The child execs
//! DIR/run while another thread renames DIR/allowed and DIR/forbidden over it in turn (the
//! session forbids what DIR/forbidden's line runs, which leaves DIR/ran behind).
use std::{
    io::Read,
    os::fd::AsRawFd,
    sync::atomic::{AtomicBool, Ordering},
};

static START: AtomicBool = AtomicBool::new(false);

/// Flips DIR/run between DIR/allowed and DIR/forbidden, each swap atomic (link, rename).
fn flip_script(dir: &std::path::Path) -> ! {
    let run = dir.join("run");
    loop {
        for (src, tmp) in [("allowed", "tmp-a"), ("forbidden", "tmp-f")] {
            let tmp = dir.join(tmp);
            let _ = std::fs::hard_link(dir.join(src), &tmp);
            let _ = std::fs::rename(&tmp, &run);
        }
    }
}

fn attempt_interp(dir: &std::path::Path) -> &'static str {
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only runs its own code until execve or _exit.
    match unsafe { libc::fork() } {
        0 => {
            let d = dir.to_path_buf();
            std::thread::spawn(move || {
                START.store(true, Ordering::SeqCst);
                flip_script(&d)
            });
            while !START.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            std::env::set_current_dir(dir).unwrap();
            // SAFETY: plain system calls.
            unsafe {
                libc::dup2(w.as_raw_fd(), 1);
                let argv = [c"./run".as_ptr(), std::ptr::null()];
                libc::execv(c"./run".as_ptr(), argv.as_ptr());
                libc::_exit(100 + *libc::__errno_location());
            }
        }
        pid => {
            drop(w);
            let out = wait_output(r, pid);
            let ran = dir.join("ran");
            if out.0 {
                "killed"
            } else if ran.exists() {
                let _ = std::fs::remove_file(ran);
                "ran_forbidden"
            } else if out.1.contains("ran") {
                "ran_allowed"
            } else {
                "denied"
            }
        }
    }
}

/// The child's output and whether SIGKILL ended it.
fn wait_output(r: std::os::fd::OwnedFd, pid: i32) -> (bool, String) {
    let mut out = String::new();
    let mut f = std::fs::File::from(r);
    let _ = f.read_to_string(&mut out);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let killed = libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL;
    (killed, out)
}

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
            let (killed, out) = wait_output(r, pid);
            if killed {
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
    let interp_dir = match std::env::args().nth(2).as_deref() {
        Some("interp") => Some(std::path::PathBuf::from(
            std::env::args().nth(3).expect("interp DIR"),
        )),
        _ => None,
    };
    for _ in 0..n {
        let outcome = match &interp_dir {
            Some(dir) => attempt_interp(dir),
            None => attempt(),
        };
        *counts.get_mut(outcome).unwrap() += 1;
    }
    let line: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("{}", line.join(" "));
}
