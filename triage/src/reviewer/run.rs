//! Running the reviewer command: input on stdin, the answer from stdout (bounded), stderr kept
//! bounded for the reason, all within the timeout; then, or when the answer runs over its
//! bound, its whole process group is killed.
use std::{
    io::{self, Read, Write},
    os::unix::process::CommandExt,
    process::{ChildStderr, ChildStdout, Command, ExitStatus, Stdio},
    sync::mpsc::{Receiver, channel},
    thread,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};

use super::{ReviewError, clean};

/// Most bytes of an answer: a few thousand words about a few dozen findings.
const MAX_ANSWER: usize = 256 * 1024;
const MAX_STDERR: usize = 4096;
/// How long a killed reviewer may take to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(2);

/// What the threads watching the reviewer report, each once.
enum Done {
    Stdout(io::Result<Vec<u8>>),
    Stderr(Vec<u8>),
    Exit(io::Result<ExitStatus>),
}

/// The reviewer's stdout, when it exited successfully in time with an answer within bounds.
pub fn run(command: &[String], input: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, ReviewError> {
    let (program, args) = command.split_first().ok_or(ReviewError::EmptyCommand)?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: a timeout kills what it started too.
        .process_group(0)
        .spawn()
        .map_err(|source| ReviewError::Spawn {
            program: clean(program, 200).0,
            source,
        })?;
    let deadline = Instant::now() + timeout;
    let group = Pid::from_raw(child.id() as i32);
    let (mut stdin, stdout, stderr) = (
        child.stdin.take().expect("piped"),
        child.stdout.take().expect("piped"),
        child.stderr.take().expect("piped"),
    );
    let (tx, rx) = channel();
    // A reviewer that does not read all its input still gets to answer.
    thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out_tx = tx.clone();
    thread::spawn(move || {
        let _ = out_tx.send(Done::Stdout(read_answer(stdout)));
    });
    let err_tx = tx.clone();
    thread::spawn(move || {
        let _ = err_tx.send(Done::Stderr(read_stderr(stderr)));
    });
    thread::spawn(move || {
        let _ = tx.send(Done::Exit(child.wait()));
    });

    let (mut out, mut err, mut status) = (None, None, None);
    while out.is_none() || err.is_none() || status.is_none() {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Done::Stdout(Ok(o))) if o.len() > MAX_ANSWER => {
                kill(group, &rx, status.is_some());
                return Err(ReviewError::TooLong(MAX_ANSWER));
            }
            Ok(Done::Stdout(o)) => out = Some(o),
            Ok(Done::Stderr(e)) => err = Some(e),
            Ok(Done::Exit(s)) => status = Some(s),
            // Also when a watcher is gone without a word: then nothing more comes.
            Err(_) => {
                kill(group, &rx, status.is_some());
                return Err(ReviewError::Timeout(timeout));
            }
        }
    }
    let failed = |e: io::Error| ReviewError::Failed(e.to_string());
    let status = status.expect("loop ends with it").map_err(failed)?;
    if !status.success() {
        let err = String::from_utf8_lossy(err.as_deref().unwrap_or_default()).into_owned();
        let err = clean(&err, MAX_STDERR).0;
        return Err(ReviewError::Failed(if err.is_empty() {
            status.to_string()
        } else {
            format!("{status}: {err}")
        }));
    }
    out.expect("loop ends with it").map_err(failed)
}

/// Kills the reviewer's process group and waits, bounded, until the reviewer is reaped, so
/// that it is gone when the review returns.
fn kill(group: Pid, rx: &Receiver<Done>, reaped: bool) {
    let _ = killpg(group, Signal::SIGKILL);
    if reaped {
        return;
    }
    let deadline = Instant::now() + REAP_WAIT;
    while let Ok(done) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Done::Exit(_) = done {
            return;
        }
    }
}

/// Up to one byte over the bound, which says that the answer is too long.
fn read_answer(stdout: ChildStdout) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    stdout.take(MAX_ANSWER as u64 + 1).read_to_end(&mut out)?;
    Ok(out)
}

/// The first bytes, then the rest read and dropped so that the reviewer never blocks on a
/// full pipe.
fn read_stderr(mut stderr: ChildStderr) -> Vec<u8> {
    let mut err = Vec::new();
    let _ = (&mut stderr).take(MAX_STDERR as u64).read_to_end(&mut err);
    let _ = io::copy(&mut stderr, &mut io::sink());
    err
}
