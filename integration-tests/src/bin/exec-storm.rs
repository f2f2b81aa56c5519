//! Benchmark workload: N times fork + execve("/bin/true") + waitpid, timed from the inside so
//! that supervised and unsupervised runs measure the same thing. Prints nanoseconds.
use std::{ffi::CString, time::Instant};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let path = CString::new("/bin/true").unwrap();
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: the child only calls execve and _exit, both async-signal-safe.
        unsafe {
            match libc::fork() {
                -1 => panic!("fork: {}", std::io::Error::last_os_error()),
                0 => {
                    libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                    libc::_exit(127);
                }
                pid => {
                    let mut status = 0;
                    libc::waitpid(pid, &mut status, 0);
                    assert_eq!(status, 0, "/bin/true failed");
                }
            }
        }
    }
    println!("{}", start.elapsed().as_nanos());
}
