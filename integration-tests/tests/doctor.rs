//! `warden doctor` tells the truth about this host.
use std::{os::unix::process::CommandExt as _, process::Command};

use warden_integration_tests::*;

#[test]
fn reports_this_host_truthfully() {
    require_root();
    let out = Command::new(warden_bin()).arg("doctor").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no `{name}` line in:\n{text}"))
            .to_string()
    };
    // This host refuses BPF LSM and fentry programs (platform.md): reported, not fatal.
    assert!(line("eBPF LSM").contains("unavailable"), "{text}");
    assert!(
        line("eBPF LSM").contains("Operation not permitted"),
        "{text}"
    );
    assert!(line("eBPF fentry").contains("unavailable"), "{text}");
    assert!(line("eBPF kprobe").contains("unavailable"), "{text}");
    for ok in [
        "eBPF tracepoint",
        "eBPF raw tracepoint",
        "eBPF cgroup sock_addr",
        "Warden's kernel programs",
        "cgroup v2",
        "tracefs",
        "BTF",
    ] {
        assert!(line(ok).contains(" ok "), "{ok}: {text}");
    }
    assert!(line("Landlock").contains("ABI 7"), "{text}");
    assert!(line("seccomp user notification").contains(" ok "), "{text}");
    assert!(!text.contains("MISSING"));
}

#[test]
fn exits_non_zero_when_something_required_is_missing() {
    require_root();
    // Not being root is a missing requirement.
    let out = Command::new(warden_bin())
        .arg("doctor")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("running as root") && l.contains("MISSING")),
        "{text}"
    );
    assert!(text.contains("fix: run warden with sudo"), "{text}");
}
