//! Test workload: one of each file system call Warden observes, by its own system call number
//! (libc would pick `openat` for `open`), in the current directory. Every tier must record
//! the same calls (tests/hook_tiers.rs). Prints `name=result` lines.
use std::ffi::CString;

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn main() {
    let mut calls: Vec<(&str, libc::c_long)> = Vec::new();
    let (a, b, x) = (c("tier-a"), c("tier-b"), c("tier-missing"));
    let (l1, l2, s1, s2) = (c("tier-l1"), c("tier-l2"), c("tier-s1"), c("tier-s2"));
    let (r1, r2, r3) = (c("tier-r1"), c("tier-r2"), c("tier-r3"));
    // SAFETY: raw system calls on NUL-terminated strings that outlive them; descriptors that
    // open returns are closed at once.
    unsafe {
        let at = libc::AT_FDCWD as libc::c_long;
        let mut call = |name, r: libc::c_long| {
            calls.push((name, r));
            if r > 2 && name.starts_with("open") | name.starts_with("creat") {
                libc::close(r as i32);
            }
        };
        call("creat", libc::syscall(libc::SYS_creat, a.as_ptr(), 0o644));
        call(
            "open",
            libc::syscall(libc::SYS_open, a.as_ptr(), libc::O_RDONLY),
        );
        call(
            "openat",
            libc::syscall(libc::SYS_openat, at, x.as_ptr(), libc::O_RDONLY),
        );
        // struct open_how { u64 flags, mode, resolve; }
        let how: [u64; 3] = [libc::O_WRONLY as u64, 0, 0];
        call(
            "openat2",
            libc::syscall(
                libc::SYS_openat2,
                at,
                a.as_ptr(),
                how.as_ptr(),
                size_of::<[u64; 3]>(),
            ),
        );
        call(
            "link",
            libc::syscall(libc::SYS_link, a.as_ptr(), l1.as_ptr()),
        );
        call(
            "linkat",
            libc::syscall(libc::SYS_linkat, at, a.as_ptr(), at, l2.as_ptr(), 0),
        );
        call(
            "symlink",
            libc::syscall(libc::SYS_symlink, a.as_ptr(), s1.as_ptr()),
        );
        call(
            "symlinkat",
            libc::syscall(libc::SYS_symlinkat, a.as_ptr(), at, s2.as_ptr()),
        );
        call(
            "rename",
            libc::syscall(libc::SYS_rename, l1.as_ptr(), r1.as_ptr()),
        );
        call(
            "renameat",
            libc::syscall(libc::SYS_renameat, at, l2.as_ptr(), at, r2.as_ptr()),
        );
        call(
            "renameat2",
            libc::syscall(libc::SYS_renameat2, at, r2.as_ptr(), at, r3.as_ptr(), 0),
        );
        call("truncate", libc::syscall(libc::SYS_truncate, a.as_ptr(), 0));
        call("unlink", libc::syscall(libc::SYS_unlink, r1.as_ptr()));
        for p in [&r3, &s1, &s2, &b] {
            call(
                "unlinkat",
                libc::syscall(libc::SYS_unlinkat, at, p.as_ptr(), 0),
            );
        }
    }
    for (name, r) in calls {
        println!("{name}={r}");
    }
}
