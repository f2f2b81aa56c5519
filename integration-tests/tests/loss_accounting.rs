//! Every exec is either a record or counted in an `events.lost` record: never silently lost.
use std::{process::Stdio, time::Duration};

use nix::{sys::signal::Signal, unistd::Pid};
use warden_integration_tests::*;

const EXECS: u32 = 20_000;

fn storm() -> String {
    format!("i=0; while [ $i -lt {EXECS} ]; do /bin/true; i=$((i+1)); done")
}

/// The arithmetic: the shell's exec, 20,000 forks and execs of /bin/true, 20,001 exits.
fn assert_accounted(s: &Session) {
    assert!(s.status.success(), "{}", s.stderr);
    let lost = s.lost();
    let execs = s.execs();
    assert!(
        execs
            .iter()
            .all(|e| e.filename == "/bin/true" || e.filename == "/usr/bin/sh")
    );
    assert_eq!(
        execs.len() as u64 + lost.exec,
        u64::from(EXECS) + 1,
        "{lost:?}"
    );
    assert_eq!(
        s.count("fork") as u64 + lost.fork,
        u64::from(EXECS),
        "{lost:?}"
    );
    assert_eq!(
        s.count("exit") as u64 + lost.exit,
        u64::from(EXECS) + 1,
        "{lost:?}"
    );
    assert_eq!(lost.undecodable, 0);
    assert_eq!(s.end().lost, lost.exec + lost.fork + lost.exit);
    assert_eq!(
        lost.total,
        s.end().lost,
        "the last events.lost carries the session total"
    );
}

#[test]
fn twenty_thousand_execs_are_all_accounted_for() {
    let s = run_session(&[], &["sh", "-c", &storm()]);
    assert_accounted(&s);
}

/// Forces real losses: a tiny ring buffer and a supervisor stopped (SIGSTOP) while the storm
/// goes on, so the kernel has nowhere to write.
#[test]
fn losses_are_counted_exactly_when_the_ring_buffer_overflows() {
    let state = tempfile::tempdir().unwrap();
    let child = warden_command(
        state.path(),
        &["--ring-buffer-kib", "64"],
        &["sh", "-c", &storm()],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let warden = Pid::from_raw(child.id() as i32);
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(warden, Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    nix::sys::signal::kill(warden, Signal::SIGCONT).unwrap();
    let s = finish(state, child.wait_with_output().unwrap());
    assert_accounted(&s);
    let lost = s.lost();
    assert!(
        lost.exec > 0,
        "a stopped consumer with a 64 KiB buffer must lose execs: {lost:?}"
    );
    assert!(s.count("events.lost") >= 1);
}
