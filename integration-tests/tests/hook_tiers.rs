//! Hook tiers: a session takes the best tier the kernel gives and records it; every tier
//! records the same file calls; a tier the kernel lacks is refused when asked for; and on the
//! bpf_lsm tier the LSM layer holds alone where Landlock or seccomp also hold. Run on every
//! kernel of the VM matrix (each gives a different best tier).
use std::{os::unix::process::CommandExt as _, process::Command};

use warden::events::LsmDenied;
use warden_integration_tests::{kernels, *};

const TIERS: [&str; 3] = ["bpf_lsm", "fentry", "tracepoint"];

fn bin(name: &str) -> String {
    warden_bin().with_file_name(name).display().to_string()
}

/// The tiers this kernel gives, best first (the ones after its best).
fn tiers_here() -> Option<&'static [&'static str]> {
    let best = kernels::this_kernel()?.best_tier();
    let at = TIERS.iter().position(|t| *t == best).unwrap();
    Some(&TIERS[at..])
}

#[test]
fn a_session_takes_the_best_tier_and_records_why_not_a_better_one() {
    let s = run_session(&[], &["true"]);
    assert!(s.status.success(), "{}", s.stderr);
    let start = s.start();
    let Some(kernel) = kernels::this_kernel() else {
        return;
    };
    let best = kernel.best_tier();
    assert_eq!(start.hook_tier, best);
    let better: Vec<&str> = TIERS.iter().take_while(|t| **t != best).copied().collect();
    let passed: Vec<&str> = start
        .hook_tiers_unavailable
        .iter()
        .map(|l| l.split_once(": ").expect("TIER: why").0)
        .collect();
    assert_eq!(passed, better, "{:?}", start.hook_tiers_unavailable);
    if best == "fentry" {
        // A kernel with BPF LSM booted without `bpf` in its list: the self-test tells.
        assert!(
            start.hook_tiers_unavailable[0].contains("not in the kernel's active LSM list"),
            "{:?}",
            start.hook_tiers_unavailable
        );
    }
}

/// (kind, path, path2, flags, result, count) of the workload's records.
type Row = (String, String, Option<String>, Option<String>, String, u64);

fn file_rows(s: &Session) -> Vec<Row> {
    let mut rows: Vec<Row> = file_events(s)
        .into_iter()
        .filter(|(_, f)| f.path.starts_with("tier-"))
        .map(|(k, f)| {
            (
                k.to_string(),
                f.path.clone(),
                f.path2.clone(),
                f.flags.clone(),
                f.result.clone(),
                f.count,
            )
        })
        .collect();
    rows.sort();
    rows
}

fn row(k: &str, p: &str, p2: Option<&str>, flags: Option<&str>, r: &str, n: u64) -> Row {
    (
        k.into(),
        p.into(),
        p2.map(Into::into),
        flags.map(Into::into),
        r.into(),
        n,
    )
}

#[test]
fn every_tier_records_the_same_file_calls() {
    let Some(tiers) = tiers_here() else { return };
    let mut want = vec![
        row(
            "open",
            "tier-a",
            None,
            Some("O_WRONLY|O_CREAT|O_TRUNC"),
            "ok",
            1,
        ),
        row("open", "tier-a", None, Some("O_RDONLY"), "ok", 1),
        row("open", "tier-missing", None, Some("O_RDONLY"), "ENOENT", 1),
        row("open", "tier-a", None, Some("O_WRONLY"), "ok", 1),
        row("link", "tier-a", Some("tier-l1"), None, "ok", 1),
        row("link", "tier-a", Some("tier-l2"), None, "ok", 1),
        // symlink: the new name is the path, the target its second path.
        row("symlink", "tier-s1", Some("tier-a"), None, "ok", 1),
        row("symlink", "tier-s2", Some("tier-a"), None, "ok", 1),
        row("rename", "tier-l1", Some("tier-r1"), None, "ok", 1),
        row("rename", "tier-l2", Some("tier-r2"), None, "ok", 1),
        row("rename", "tier-r2", Some("tier-r3"), None, "ok", 1),
        row("truncate", "tier-a", None, None, "ok", 1),
        row("unlink", "tier-r1", None, None, "ok", 1),
        row("unlink", "tier-r3", None, None, "ok", 1),
        row("unlink", "tier-s1", None, None, "ok", 1),
        row("unlink", "tier-s2", None, None, "ok", 1),
        row("unlink", "tier-b", None, None, "ENOENT", 1),
    ];
    let s = run_session(&[], &["true"]);
    if s.start()
        .missing_layers
        .iter()
        .any(|l| l == "landlock.truncate")
    {
        // seccomp refuses truncate(2) before it runs (a syscall.denied): no file call.
        want.retain(|r| r.0 != "truncate");
    }
    want.sort();
    for tier in tiers {
        let ws = tempfile::tempdir().unwrap();
        let script = format!("cd {} && {}", ws.path().display(), bin("file-calls"));
        let s = run_session(&["--hook-tier", tier], &["sh", "-c", &script]);
        assert!(s.status.success(), "{tier}: {}", s.stderr);
        assert_eq!(s.start().hook_tier, *tier);
        assert_eq!(file_rows(&s), want, "{tier}:\n{}", s.stdout);
        assert_eq!(s.lost().total, 0, "{tier}");
        println!("{tier}: {} file records as expected", want.len());
    }
}

#[test]
fn a_tier_the_kernel_does_not_give_is_refused_before_anything_starts() {
    let Some(tiers) = tiers_here() else { return };
    for tier in TIERS.iter().filter(|t| !tiers.contains(t)) {
        let state = private_dir();
        let out = warden_command(state.path(), &["--hook-tier", tier], &["true"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{tier}: {err}");
        assert!(
            err.contains(&format!(
                "hook tier {tier} asked for, but this kernel does not give it: "
            )),
            "{tier}: {err}"
        );
        assert!(the_log(state.path()).is_none(), "{tier}: no session: {err}");
    }
}

fn lsm_denials(s: &Session) -> Vec<&LsmDenied> {
    picked!(s, Event::LsmDenied(d) => d)
}

/// A process of `nobody` outside any session, for the session to try to reach.
struct Victim(std::process::Child);

impl Victim {
    fn start() -> Self {
        Self(
            // Killed on drop; long enough to outlive every session of a slow VM's test.
            Command::new("sleep")
                .arg("3600")
                .uid(65534)
                .gid(65534)
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The attempts, each printing `NAME=result`, run as `nobody` like the victim: a protected
/// file (read through its path, a symlink to it and /proc/self/root; a file planted beside
/// it, a directory, a symlink and a FIFO made beside it; hard-linked, moved and removed), a signal and a ptrace-mode read of the victim, and
/// bpf(); the session's own child stays reachable.
fn attempts(secret: &str, victim: u32, workspace: &str) -> String {
    let e = bin("escape");
    format!(
        "cd {workspace}/sub; ln -s {secret} link
         cat {secret} >/dev/null 2>&1; echo READ=$?
         cat link >/dev/null 2>&1; echo LINK=$?
         cat /proc/self/root{secret} >/dev/null 2>&1; echo PROCROOT=$?
         echo KILL=$({e} kill {victim})
         head -c1 /proc/{victim}/environ >/dev/null 2>&1; echo ENVIRON=$?
         echo BPF=$({e} bpf)
         touch {secret}-planted 2>/dev/null; echo PLANT=$?
         mkdir {secret}-dir 2>/dev/null; echo MKDIR=$?
         ln -s /etc/passwd {secret}-sym 2>/dev/null; echo SYMLINK=$?
         mkfifo {secret}-fifo 2>/dev/null; echo FIFO=$?
         ln {secret} hard 2>/dev/null; echo HARDLINK=$?
         mv {secret} moved 2>/dev/null; echo MOVE=$?
         rm -f {secret}; echo REMOVE=$?
         rmdir {workspace}/vault 2>/dev/null; echo RMDIR=$?
         sleep 30 & kill $!; wait $!; echo OWN=$?"
    )
}

/// Where Landlock and seccomp also hold, the bpf_lsm tier's programs hold alone (the other
/// layers left out of a test build), and the other layers hold without them.
#[test]
fn the_lsm_layer_and_the_others_each_hold_alone() {
    let Some(tiers) = tiers_here() else { return };
    if tiers[0] != "bpf_lsm" {
        println!("skipped: no BPF LSM on this boot ({})", kernels::release());
        return;
    }
    let victim = Victim::start();
    let pid = victim.0.id();
    // A protected file inside the workspace: beneath a write root, by `--deny-read`.
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir(ws.path().join("secrets")).unwrap();
    std::fs::write(ws.path().join("secrets/key"), "k").unwrap();
    std::fs::create_dir(ws.path().join("sub")).unwrap();
    let chown = |p: &std::path::Path| {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    };
    chown(ws.path());
    chown(&ws.path().join("secrets"));
    chown(&ws.path().join("secrets/key"));
    chown(&ws.path().join("sub"));
    // An empty protected directory: removed and made again, it would hold what the agent put.
    std::fs::create_dir(ws.path().join("vault")).unwrap();
    chown(&ws.path().join("vault"));
    let w = ws.path().display().to_string();
    let secret = format!("{w}/secrets/key");
    let deny = format!("{w}/secrets");
    let vault = format!("{w}/vault");
    let script = attempts(&secret, pid, &w);
    let run = |tier: &str, without: &str| {
        let state = private_dir();
        let out = warden_command(
            state.path(),
            &[
                "--hook-tier",
                tier,
                "--user",
                "nobody",
                "--workspace",
                &w,
                "--deny-read",
                &deny,
                "--deny-read",
                &vault,
            ],
            &["sh", "-c", &script],
        )
        .env(warden_agent::test_layers::ENV, without)
        .output()
        .unwrap();
        std::fs::remove_file(ws.path().join("sub/link")).ok();
        finish(state, out)
    };
    for (tier, without) in [
        // The LSM programs alone.
        ("bpf_lsm", "landlock,signal-rules,refuse:bpf"),
        // Landlock and seccomp alone.
        ("fentry", ""),
        // Both.
        ("bpf_lsm", ""),
    ] {
        let s = run(tier, without);
        assert!(
            s.status.success(),
            "{tier} without [{without}]: {}",
            s.stderr
        );
        let got = |what: &str| status_of(&s, what);
        let case = format!("{tier} without [{without}]: {}", s.stdout);
        for what in [
            "READ", "LINK", "PROCROOT", "ENVIRON", "PLANT", "MKDIR", "SYMLINK", "FIFO", "MOVE",
            "REMOVE", "RMDIR",
        ] {
            assert_eq!(got(what), "1", "{what}: {case}");
        }
        assert_ne!(got("HARDLINK"), "0", "{case}");
        assert!(
            std::fs::read_to_string(&secret).is_ok_and(|k| k == "k"),
            "the secret is still there, unchanged: {case}"
        );
        assert!(std::path::Path::new(&vault).is_dir(), "{case}");
        assert_eq!(got("KILL"), "err EPERM", "{case}");
        assert_eq!(got("BPF"), "err EPERM", "{case}");
        assert_eq!(got("OWN"), "143", "the session's own child: {case}");
        assert!(alive(pid), "the victim survived: {case}");
        let denied = lsm_denials(&s);
        if without.is_empty() {
            // The other layers decided first (or, on fentry, alone).
            if tier == "fentry" {
                assert!(denied.is_empty(), "{denied:?}");
            }
            continue;
        }
        let hooks = |hook: &str| denied.iter().filter(|d| d.hook.as_str() == hook).count();
        assert!(
            hooks("file_open") >= 3,
            "each spelling of the secret (and mv's copy): {denied:#?}"
        );
        for hook in [
            "inode_create",
            "inode_mkdir",
            "inode_mknod",
            "inode_symlink",
            "inode_link",
            "inode_rename",
            "inode_unlink",
            "inode_rmdir",
        ] {
            assert_eq!(hooks(hook), 1, "{hook}: {denied:#?}");
        }
        assert!(
            denied.iter().filter(|d| d.hook.about_files()).all(|d| {
                let path = if d.hook.as_str() == "inode_rmdir" {
                    &vault
                } else {
                    &deny
                };
                d.protected.as_deref() == Some(path.as_str()) && d.errno == "EACCES"
            }),
            "{denied:#?}"
        );
        let target = |hook: &str| {
            denied
                .iter()
                .any(|d| d.hook.as_str() == hook && d.target_pid == Some(pid))
        };
        assert!(target("task_kill"), "{denied:#?}");
        assert!(target("ptrace_access_check"), "{denied:#?}");
        let bpf_hook = kernels::this_kernel().is_some_and(|k| k.lsm_bpf_hook_first);
        assert_eq!(hooks("bpf"), usize::from(bpf_hook), "{denied:#?}");
        // The file calls are recorded with what they got, as on every tier.
        let opens: Vec<_> = file_events(&s)
            .into_iter()
            .filter(|(k, f)| *k == "open" && f.path == secret)
            .collect();
        assert!(
            opens.iter().all(|(_, f)| f.result == "EACCES") && !opens.is_empty(),
            "{opens:?}"
        );
    }
}
