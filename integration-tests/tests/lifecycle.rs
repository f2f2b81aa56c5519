//! Exit status, the invoking user, and cleanup after normal and interrupted runs.
use std::{path::Path, process::Stdio, time::Duration};

use nix::{sys::signal::Signal, unistd::Pid};
use warden::events::EndReason;
use warden_integration_tests::*;

#[test]
fn exit_codes_and_signals_propagate() {
    for (script, status) in [
        ("exit 0", 0),
        ("exit 7", 7),
        ("kill -TERM $$", 128 + 15),
        ("kill -KILL $$", 128 + 9),
    ] {
        let s = run_session(&[], &["sh", "-c", script]);
        assert_eq!(s.status.code(), Some(status), "{script}: {}", s.stderr);
        assert_eq!(s.end().status, status, "{script}");
        assert_eq!(s.end().reason, EndReason::Exited);
    }
}

#[test]
fn a_command_that_cannot_start_is_reported() {
    let s = run_session(&[], &["/nonexistent/agent"]);
    assert_eq!(s.status.code(), Some(127));
    assert_eq!(s.end().reason, EndReason::SpawnFailed);
    assert!(
        s.end()
            .error
            .as_deref()
            .unwrap()
            .contains("/nonexistent/agent")
    );
    assert!(
        s.stderr.contains("cannot run /nonexistent/agent"),
        "{}",
        s.stderr
    );
}

#[test]
fn the_command_gets_a_clean_signal_state() {
    // Warden blocks the signals it reads through a signalfd; the command must not inherit that
    // (it would make the agent unkillable by SIGTERM), nor Rust's ignored SIGPIPE.
    // Signals ignored by whoever started Warden stay ignored (as with any exec), except
    // SIGPIPE, which only Rust's runtime ignored.
    let field = |status: &str, name: &str| -> u64 {
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {status}"));
        u64::from_str_radix(hex.trim(), 16).unwrap()
    };
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let sigpipe = 1 << (libc::SIGPIPE - 1);
    // glibc's posix_spawn (how this test starts Warden) sets its internal signals 32 and 33 to
    // SIG_IGN in the child once the parent has installed their handlers, which this test process
    // does or not depending on timing (seen in the VM matrix): Warden may inherit them ignored
    // from us although we do not ignore them, so those two are left out of the comparison.
    let glibc_internal: u64 = (1 << 31) | (1 << 32);
    let s = run_session(&[], &["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]);
    assert_eq!(field(&s.stdout, "SigBlk:"), 0, "{}", s.stdout);
    assert_eq!(
        field(&s.stdout, "SigIgn:") & !glibc_internal,
        field(&ours, "SigIgn:") & !sigpipe & !glibc_internal,
        "{}",
        s.stdout
    );
}

#[test]
fn runs_as_the_invoking_user() {
    let state = private_dir();
    let out = warden_command(state.path(), &[], &["sh", "-c", "id -u; id -g; echo $HOME"])
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65534")
        .output()
        .unwrap();
    let s = finish(state, out);
    assert_eq!(s.stdout, "65534\n65534\n/nonexistent\n", "{}", s.stderr);
    assert_eq!((s.start().uid, s.start().user.as_str()), (65534, "nobody"));
    // The launcher starts as root and drops to the user before it execs the command.
    let execs = s.execs();
    assert!(execs[0].filename.ends_with("/warden-launcher") && execs[0].uid == 0);
    assert!(
        execs[1..].iter().all(|e| e.uid == 65534 && e.gid == 65534),
        "{execs:?}"
    );

    let s = run_session(&["--user", "nobody"], &["id", "-u"]);
    assert_eq!(s.stdout, "65534\n", "{}\n{:#?}", s.stderr, s.records);
    // A bad user is refused before anything is created.
    let state = private_dir();
    let out = warden_command(state.path(), &["--user", "no-such-user-here"], &["true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such user: no-such-user-here"));
    assert!(the_log(state.path()).is_none());
}

/// Interrupting Warden (SIGINT or SIGTERM from another process) ends the session: every
/// process of it is killed, and its cgroup and kernel programs are gone.
fn interrupt(signal: Signal) {
    let state = private_dir();
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = format!(
        "sleep 300 & echo $! >> {p}; (setsid sleep 300 & echo $! >> {p}); echo $$ >> {p}; wait",
        p = pids.display()
    );
    let child = warden_command(state.path(), &[], &["sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let read_pids = || -> Vec<u32> {
        std::fs::read_to_string(&pids)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    };
    // The session's start: seconds under emulation, with other tests' sessions starting and
    // ending (fexit detaches wait for RCU grace periods) beside it.
    assert!(wait_for(Duration::from_secs(60), || read_pids().len() == 3));
    let session_pids = read_pids();
    assert!(session_pids.iter().all(|&p| alive(p)));
    nix::sys::signal::kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    let out = child.wait_with_output().unwrap();
    let s = finish(state, out);
    assert_eq!(s.status.code(), Some(128 + signal as i32), "{}", s.stderr);
    assert_eq!(s.end().reason, EndReason::Interrupted);
    assert!(s.end().killed >= 3, "{:?}", s.end());
    for pid in session_pids {
        assert!(
            !alive(pid),
            "process {pid} survived the interrupted session"
        );
        let exit = s
            .exits()
            .into_iter()
            .find(|x| x.pid == pid)
            .expect("exit recorded");
        assert_eq!(exit.signal, Some(9));
    }
    // finish() checked the cgroup and the programs; the parent directory stays for others.
    assert!(Path::new(&s.start().cgroup).parent().unwrap().exists());
}

#[test]
fn sigint_leaves_nothing_behind() {
    interrupt(Signal::SIGINT);
}

#[test]
fn sigterm_leaves_nothing_behind() {
    interrupt(Signal::SIGTERM);
}
