//! Every exec is either a record or counted in an `events.lost` record: never silently lost.
use std::{process::Stdio, time::Duration};

use nix::{sys::signal::Signal, unistd::Pid};
use warden_integration_tests::*;

/// Execs (and forks) per storm: 20,000, or `WARDEN_TEST_STORM` (the VM matrix uses fewer:
/// under software emulation each gated exec takes tens of milliseconds).
fn storm_size() -> u64 {
    std::env::var("WARDEN_TEST_STORM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn storm() -> String {
    let n = storm_size();
    format!("i=0; while [ $i -lt {n} ]; do /bin/true; i=$((i+1)); done")
}

/// The arithmetic: the launcher's exec and the shell's (one process), N forks and execs of
/// /bin/true, N + 1 exits.
fn assert_accounted(s: &Session) {
    assert!(s.status.success(), "{}", s.stderr);
    let lost = s.lost();
    let execs = s.execs();
    assert!(execs.iter().all(|e| {
        e.filename == "/bin/true"
            || e.filename == "/usr/bin/sh"
            || e.filename.ends_with("/warden-launcher")
    }));
    assert_eq!(execs.len() as u64 + lost.exec, storm_size() + 2, "{lost:?}");
    assert_eq!(s.count("fork") as u64 + lost.fork, storm_size(), "{lost:?}");
    assert_eq!(
        s.count("exit") as u64 + lost.exit,
        storm_size() + 1,
        "{lost:?}"
    );
    assert_eq!(lost.undecodable, 0);
    assert_eq!(
        s.end().lost,
        lost.exec + lost.fork + lost.exit + lost.network + lost.file
    );
    assert_eq!(
        lost.total,
        s.end().lost,
        "the last events.lost carries the session total"
    );
}

#[test]
fn every_exec_of_a_storm_is_accounted_for() {
    let s = run_session(&[], &["sh", "-c", &storm()]);
    assert_accounted(&s);
}

/// Forces real losses: a tiny ring buffer and a supervisor stopped (SIGSTOP) while a storm of
/// forks goes on. (Execs would not do: each waits for the exec gate, which is stopped too, so
/// the gate throttles an exec storm instead of letting it overflow the buffer.)
#[test]
fn losses_are_counted_exactly_when_the_ring_buffer_overflows() {
    let forks = storm_size();
    let state = private_dir();
    let work = tempfile::tempdir().unwrap();
    let ready = work.path().join("ready");
    let storm = format!(
        "touch {}; i=0; while [ $i -lt {forks} ]; do (:); i=$((i+1)); done",
        ready.display()
    );
    let child = warden_command(
        state.path(),
        &["--ring-buffer-kib", "16"],
        &["sh", "-c", &storm],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let warden = Pid::from_raw(child.id() as i32);
    // The session's start: seconds under emulation beside other tests' sessions.
    assert!(wait_for(Duration::from_secs(60), || ready.exists()));
    nix::sys::signal::kill(warden, Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    nix::sys::signal::kill(warden, Signal::SIGCONT).unwrap();
    let s = finish(state, child.wait_with_output().unwrap());
    assert!(s.status.success(), "{}", s.stderr);
    let lost = s.lost();
    assert!(
        lost.fork > 0,
        "a stopped consumer with a 16 KiB buffer must lose forks: {lost:?}"
    );
    // The storm, plus `touch`; exits also count the shell itself.
    assert_eq!(s.count("fork") as u64 + lost.fork, forks + 1, "{lost:?}");
    assert_eq!(s.count("exit") as u64 + lost.exit, forks + 2, "{lost:?}");
    assert_eq!(
        s.execs().len() as u64 + lost.exec,
        3,
        "the launcher, the shell and touch"
    );
    assert_eq!(
        s.end().lost,
        lost.exec + lost.fork + lost.exit + lost.network + lost.file
    );
    assert!(s.count("events.lost") >= 1);
}
