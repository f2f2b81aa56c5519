//! `warden doctor` tells the truth about this host.
use std::{os::unix::process::CommandExt as _, process::Command};

use warden_integration_tests::*;

#[test]
fn reports_this_kernel_truthfully() {
    require_root();
    let out = Command::new(warden_bin()).arg("doctor").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no `{name}` line in:\n{text}"))
            .to_string()
    };
    for ok in [
        "eBPF tracepoint",
        "eBPF raw tracepoint",
        "eBPF cgroup sock_addr",
        "Warden's kernel programs",
        "cgroup v2",
        "tracefs",
        "BTF",
        "seccomp user notification",
    ] {
        assert!(line(ok).contains(" ok "), "{ok}: {text}");
    }
    assert!(!text.contains("MISSING"), "{text}");
    let Some(kernel) = kernels::this_kernel() else {
        return;
    };
    let available = |name: &str, yes: bool| {
        let l = line(name);
        assert_eq!(
            l.contains(" ok "),
            yes,
            "{name} on {}: {text}",
            kernels::release()
        );
        if !yes {
            assert!(l.contains("unavailable"), "{text}");
        }
    };
    available("eBPF LSM", kernel.bpf_lsm);
    available("eBPF fentry", kernel.fentry);
    available("eBPF kprobe", kernel.kprobe);
    if !kernel.bpf_lsm {
        // This host refuses the program type outright (platform.md): reported, not fatal.
        assert!(
            line("eBPF LSM").contains("Operation not permitted"),
            "{text}"
        );
    }
    assert!(
        line("Landlock").contains(&format!("ABI {}", kernel.landlock_abi)),
        "{text}"
    );
    // The hook tiers: the best this kernel gives is in use; the better ones say why not and
    // what they need.
    let section = |heading: &str| -> Vec<String> {
        text.lines()
            .skip_while(|l| !l.starts_with(heading))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    let tiers = section("Hook tiers");
    let tier_line = |t: &str| {
        tiers
            .iter()
            .find(|l| l.trim_start().starts_with(&format!("{t} ")))
            .unwrap_or_else(|| panic!("no hook tier {t} in:\n{text}"))
            .clone()
    };
    let best = kernel.best_tier();
    assert!(tier_line(best).ends_with("IN USE"), "{best}: {text}");
    let order = ["bpf_lsm", "fentry", "tracepoint"];
    let at = order.iter().position(|t| *t == best).unwrap();
    for better in &order[..at] {
        assert!(tier_line(better).contains("not here: "), "{better}: {text}");
    }
    for worse in &order[at + 1..] {
        assert!(tier_line(worse).contains("available"), "{worse}: {text}");
    }
    assert!(
        line("Warden's kernel programs").contains(&format!("(hook tier {best})")),
        "{text}"
    );
    // Every layer is listed; exactly the measured ones are missing, each saying what Warden
    // does instead.
    let layers = section("Confinement layers");
    for layer in warden_requirements::values::KernelLayer::ALL {
        let l = layers
            .iter()
            .find(|l| l.trim_start().starts_with(&format!("{layer} ")))
            .unwrap_or_else(|| panic!("no layer {layer} in:\n{text}"));
        if kernel.missing_layers().contains(&layer.as_str()) {
            assert!(l.contains("not here: needs "), "{l}");
        } else {
            assert!(l.ends_with("in force"), "{l}");
        }
    }
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
