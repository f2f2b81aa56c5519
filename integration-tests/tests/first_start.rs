//! Wardens starting together on a machine where nothing mounted bpffs or tracefs mount each
//! once: a second mount on top of the first would hide the first session's pinned network
//! programs (seen in the VM matrix: its teardown could not find its own pins).
//!
//! Staging it means unmounting both, which only a disposable machine allows: the VM matrix
//! sets WARDEN_TEST_DISPOSABLE=1 and runs this file alone.
use std::process::Stdio;

use warden_integration_tests::*;

fn mounts_at(target: &str, fstype: &str) -> usize {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&target) && f.get(2) == Some(&fstype)
        })
        .count()
}

#[test]
fn sessions_starting_together_mount_bpffs_and_tracefs_once() {
    require_root();
    if std::env::var("WARDEN_TEST_DISPOSABLE").as_deref() != Ok("1") {
        println!(
            "skipped: needs a disposable machine (the VM matrix) to unmount bpffs and tracefs"
        );
        return;
    }
    let targets = [("/sys/fs/bpf", "bpf"), ("/sys/kernel/tracing", "tracefs")];
    for (target, fstype) in targets {
        while mounts_at(target, fstype) > 0 {
            nix::mount::umount(target).unwrap();
        }
    }
    let states: Vec<_> = (0..4).map(|_| private_dir()).collect();
    let children: Vec<_> = states
        .iter()
        .map(|state| {
            warden_command(state.path(), &[], &["true"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, state) in children.into_iter().zip(states) {
        let s = finish(state, child.wait_with_output().unwrap());
        assert!(s.status.success(), "{}", s.stderr);
    }
    for (target, fstype) in targets {
        assert_eq!(mounts_at(target, fstype), 1, "{fstype} on {target}");
    }
}
