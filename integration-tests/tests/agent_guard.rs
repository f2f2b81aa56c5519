//! The agent guard (`warden guard`, issue 17): a listed agent program started outside a
//! session is killed before its first instruction and recorded; inside a session it runs.
//!
//! The listed programs are copies of `touch` with bytes of their own appended (`touch` ignores
//! them): if one ran, the file it names would exist. Their size and content are unique, so that
//! the guard, which looks at every exec of the machine, kills nothing else while a test runs.
use std::{
    fs,
    io::{BufRead as _, BufReader, Read as _},
    os::unix::{
        fs::PermissionsExt as _,
        process::{CommandExt as _, ExitStatusExt as _},
    },
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, ExitStatus, Stdio},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use warden::events::{GuardArming, GuardKilled, GuardVerdict};
use warden_integration_tests::*;

/// One guard per machine: the tests take turns.
static ONE_GUARD: Mutex<()> = Mutex::new(());

const NOBODY: u32 = 65534;
const PIN_ROOT: &str = "/sys/fs/bpf/warden-guard";

/// A world-readable directory in /tmp (the listed programs run as nobody) with a directory
/// `out` that nobody may write to: where a program that ran leaves its file.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("warden-guard-")
            .tempdir_in("/tmp")
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn out(&self, name: &str) -> PathBuf {
        self.path("out").join(name)
    }

    /// A copy of `touch` with `extra` bytes of its own appended (a unique size and content).
    fn agent(&self, name: &str, extra: usize) -> PathBuf {
        let path = self.path(name);
        let mut bytes = fs::read("/usr/bin/touch").unwrap();
        let seed = std::process::id() as usize;
        bytes.extend((0..extra).map(|i| ((i * 31 + seed) % 251) as u8));
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// `[[service.agent_programs]]` entries, with their digest when `with_digest`.
fn listing(programs: &[(&Path, bool)]) -> String {
    programs
        .iter()
        .map(|(p, with_digest)| {
            let mut s = format!("[[service.agent_programs]]\npath = \"{}\"\n", p.display());
            if *with_digest {
                s.push_str(&format!("sha256 = \"{}\"\n", sha256(p)));
            }
            s
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A running `warden guard`, stopped (and its pins removed) when dropped.
struct Guard {
    child: Option<Child>,
    stdout: BufReader<ChildStdout>,
    /// What it printed up to the line that says it is in force.
    started: String,
    state: PathBuf,
}

impl Guard {
    fn start(requirements: &str, state: &Path) -> Self {
        require_root();
        let mut child = Command::new(warden_bin())
            .args(["guard", "--requirements", requirements, "--state-dir"])
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut started = String::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !started.contains("kills are recorded in") {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
                let mut err = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                panic!("warden guard did not start:\n{started}\n{err}");
            }
            started.push_str(&line);
        }
        Self {
            child: Some(child),
            stdout,
            started,
            state: state.to_path_buf(),
        }
    }

    fn signal(&self, signal: Signal) {
        let pid = self.child.as_ref().unwrap().id();
        nix::sys::signal::kill(Pid::from_raw(pid as i32), signal).unwrap();
    }

    /// SIGTERM: the guard records that it stops and leaves the kernel.
    fn stop(mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        let status = self.child.take().unwrap().wait().unwrap();
        assert_eq!(status.code(), Some(0), "warden guard's exit");
        assert!(pins().is_empty(), "pins left: {:?}", pins());
        status
    }

    /// SIGKILL: dies as a crash would, leaving its pins.
    fn crash(mut self) {
        self.signal(Signal::SIGKILL);
        self.child.take().unwrap().wait().unwrap();
    }

    /// The next line it prints.
    fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line
    }

    fn log(&self) -> Vec<Record> {
        let path = self.state.join("guard/events.jsonl");
        warden::audit_log::read(&path).unwrap_or_default()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let _ = child.wait();
        }
    }
}

/// What is pinned under the guard's bpffs directory.
fn pins() -> Vec<PathBuf> {
    fs::read_dir(PIN_ROOT)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// Removes a guard a failed test left in the kernel (it would go on killing its programs).
struct Unpinned;

impl Drop for Unpinned {
    fn drop(&mut self) {
        for dir in pins() {
            for f in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let _ = fs::remove_file(f.path());
            }
            let _ = fs::remove_dir(&dir);
        }
    }
}

/// The tests' turn at the machine's one guard, with nothing left pinned before or after.
fn turn() -> (MutexGuard<'static, ()>, Unpinned) {
    let lock = ONE_GUARD.lock().unwrap_or_else(|e| e.into_inner());
    drop(Unpinned);
    (lock, Unpinned)
}

fn kills(records: &[Record]) -> Vec<GuardKilled> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::GuardKilled(k) => Some((**k).clone()),
            _ => None,
        })
        .collect()
}

/// The guard's record of the kill of `pid`, once it is written.
fn kill_of(guard: &Guard, pid: u32) -> GuardKilled {
    let mut found = None;
    wait_for(Duration::from_secs(15), || {
        found = kills(&guard.log()).into_iter().find(|k| k.pid == pid);
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no guard.killed for pid {pid}: {:?}", guard.log()))
}

/// Runs `script` with sh as nobody, outside any session; the process keeps sh's pid when the
/// script ends in `exec`.
fn as_nobody(script: &str) -> (u32, ExitStatus) {
    let mut child = Command::new("sh")
        .args(["-c", script])
        .uid(NOBODY)
        .gid(NOBODY)
        .current_dir("/")
        .spawn()
        .unwrap();
    let pid = child.id();
    (pid, child.wait().unwrap())
}

fn assert_killed(status: ExitStatus, what: &str) {
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{what}: {status:?}");
}

#[test]
fn a_listed_agent_program_started_outside_a_session_is_killed_before_its_first_instruction_and_recorded()
 {
    let _turn = turn();
    let place = Place::new();
    let agent = place.agent("agent", 1013);
    let dir = private_dir();
    let req = requirements_file(dir.path(), &listing(&[(&agent, true)]));
    let state = private_dir();
    let guard = Guard::start(&req, state.path());
    assert!(
        guard
            .started
            .contains(&format!("guarding {}", agent.display())),
        "{}",
        guard.started
    );

    // By another spelling than the listed path: only the file itself can be recognised.
    let marker = place.out("listed");
    let (pid, status) = as_nobody(&format!(
        "cd {} && exec ./agent {}",
        place.dir.path().display(),
        marker.display()
    ));
    assert_killed(status, "the listed program");
    assert!(
        !marker.exists(),
        "the listed program ran: it made {marker:?}"
    );
    let k = kill_of(&guard, pid);
    assert_eq!((k.uid, k.user.as_deref()), (NOBODY, Some("nobody")));
    assert_eq!(k.verdict, GuardVerdict::Listed);
    assert_eq!(k.program.as_deref(), Some(agent.to_str().unwrap()));
    assert_eq!(k.filename, "./agent");
    assert_eq!(k.argv, ["./agent", marker.to_str().unwrap()]);

    // The same program under `warden run` runs.
    let session_marker = place.out("in-session");
    let s = run_session(
        &["--workspace", place.dir.path().to_str().unwrap()],
        &[agent.as_os_str(), session_marker.as_os_str()],
    );
    assert_eq!(s.status.code(), Some(0), "{}", s.stderr);
    assert!(session_marker.exists(), "it did not run in the session");
    s.exec_of(agent.to_str().unwrap());

    // An unlisted program runs as the same user: `touch` itself, whose size is not listed.
    let unlisted = place.out("unlisted");
    let (_, status) = as_nobody(&format!("exec /usr/bin/touch {}", unlisted.display()));
    assert_eq!(status.code(), Some(0));
    assert!(unlisted.exists());

    guard.stop();
    let records = warden::audit_log::read(&state.path().join("guard/events.jsonl")).unwrap();
    assert_gap_free(&records);
    assert_eq!(
        kills(&records).len(),
        1,
        "only the listed program was killed"
    );
    let kinds: Vec<&str> = records.iter().map(|r| r.event.kind()).collect();
    assert_eq!(kinds, ["guard.armed", "guard.killed", "guard.disarmed"]);
    let verify = Command::new(warden_bin())
        .args(["replay", "--verify"])
        .arg(state.path().join("guard/events.jsonl"))
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
}

#[test]
fn copies_of_the_listed_content_are_killed_and_what_only_shares_its_size_is_shown() {
    let _turn = turn();
    let place = Place::new();
    let agent = place.agent("agent", 2029);
    let listed_digest = sha256(&agent);
    let dir = private_dir();
    let req = requirements_file(dir.path(), &listing(&[(&agent, true)]));
    let state = private_dir();
    let guard = Guard::start(&req, state.path());

    let elsewhere = Place::new();
    let copy = elsewhere.path("renamed");
    fs::copy(&agent, &copy).unwrap();
    let marker = elsewhere.out("copy");
    let (pid, status) = as_nobody(&format!("exec {} {}", copy.display(), marker.display()));
    assert_killed(status, "a copy");
    assert!(!marker.exists());
    let k = kill_of(&guard, pid);
    assert_eq!(k.verdict, GuardVerdict::Copy);
    assert_eq!(k.program.as_deref(), Some(agent.to_str().unwrap()));
    assert_eq!(k.sha256.as_deref(), Some(listed_digest.as_str()));

    // Same size, one byte changed: the kernel compares sizes only, so it is killed too, and
    // its record says it was not a copy.
    let lookalike = elsewhere.path("lookalike");
    let mut bytes = fs::read(&agent).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    fs::write(&lookalike, bytes).unwrap();
    fs::set_permissions(&lookalike, fs::Permissions::from_mode(0o755)).unwrap();
    let (pid, status) = as_nobody(&format!("exec {}", lookalike.display()));
    assert_killed(status, "a file of the listed size");
    let k = kill_of(&guard, pid);
    assert_eq!(k.verdict, GuardVerdict::SizeMatch);
    assert_eq!(k.sha256, Some(sha256(&lookalike)));
    assert_ne!(k.sha256.as_deref(), Some(listed_digest.as_str()));
    guard.stop();
}

#[test]
fn a_listed_script_is_killed_when_started_by_its_path() {
    let _turn = turn();
    let place = Place::new();
    let marker = place.out("script");
    let script = place.path("agent.sh");
    fs::write(
        &script,
        format!("#!/bin/sh\n/usr/bin/touch {}\n", marker.display()),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let dir = private_dir();
    let req = requirements_file(dir.path(), &listing(&[(&script, false)]));
    let state = private_dir();
    let guard = Guard::start(&req, state.path());
    assert!(guard.started.contains("(a script)"), "{}", guard.started);

    // The kernel runs /bin/sh; the path it was started by is the listed one.
    let (pid, status) = as_nobody(&format!("exec {}", script.display()));
    assert_killed(status, "the listed script");
    assert!(!marker.exists(), "the script's interpreter ran");
    let k = kill_of(&guard, pid);
    assert_eq!(k.verdict, GuardVerdict::ListedPath);
    assert_eq!(k.program.as_deref(), Some(script.to_str().unwrap()));
    guard.stop();
}

#[test]
fn the_terminal_it_was_started_from_is_told_how_to_start_it_under_warden() {
    let _turn = turn();
    let place = Place::new();
    let agent = place.agent("agent", 3041);
    let dir = private_dir();
    let req = requirements_file(dir.path(), &listing(&[(&agent, false)]));
    let state = private_dir();
    let guard = Guard::start(&req, state.path());

    // A shell on a terminal starts the agent: the shell is the parent that is told.
    let pty = nix::pty::openpty(None, None).unwrap();
    let fd = |f: &std::os::fd::OwnedFd| Stdio::from(f.try_clone().unwrap());
    let mut shell = Command::new("sh")
        .args([
            "-c",
            // It waits for a line after the status, so that it is still there to be told.
            &format!("{} --model x; echo status=$?; read done", agent.display()),
        ])
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(fd(&pty.slave))
        .stdout(fd(&pty.slave))
        .stderr(fd(&pty.slave))
        .spawn()
        .unwrap();
    drop(pty.slave);
    let mut master = fs::File::from(pty.master);
    let hint = format!(
        "warden: {0} may only run inside a Warden session: warden run -- {0} --model x",
        agent.display()
    );
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(15);
    while !(seen.contains("status=") && seen.contains(&hint)) {
        assert!(
            Instant::now() < deadline,
            "no hint on the terminal:\n{seen}"
        );
        match master.read(&mut buf) {
            Ok(0) | Err(_) => panic!("the terminal closed:\n{seen}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(seen.contains("status=137"), "{seen}");
    std::io::Write::write_all(&mut master, b"\n").unwrap();
    assert!(shell.wait().unwrap().success());
    // The terminal is told before the kill is recorded.
    wait_for(Duration::from_secs(15), || !kills(&guard.log()).is_empty());
    let k = kills(&guard.log()).pop().expect("a kill");
    assert!(k.told_user);
    guard.stop();
}

#[test]
fn the_guard_outlives_a_crash_and_the_next_one_records_what_it_killed() {
    let _turn = turn();
    let place = Place::new();
    let agent = place.agent("agent", 4051);
    let dir = private_dir();
    let req = requirements_file(dir.path(), &listing(&[(&agent, true)]));
    let state = private_dir();
    Guard::start(&req, state.path()).crash();
    assert_eq!(pins().len(), 1, "the crashed guard's pins");

    // Nobody reads the guard's buffer now: the kernel still kills.
    let marker = place.out("while-down");
    let (pid, status) = as_nobody(&format!("exec {} {}", agent.display(), marker.display()));
    assert_killed(status, "the listed program with no guard process");
    assert!(!marker.exists());

    let guard = Guard::start(&req, state.path());
    assert!(
        guard
            .started
            .contains("took over the guard an earlier one left"),
        "{}",
        guard.started
    );
    let k = kill_of(&guard, pid);
    assert_eq!(k.verdict, GuardVerdict::Listed);
    let records = guard.log();
    let armed: Vec<(u64, GuardArming)> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::GuardArmed(a) => Some((r.seq, a.how)),
            _ => None,
        })
        .collect();
    let killed_seq = records
        .iter()
        .find(|r| matches!(&r.event, Event::GuardKilled(k) if k.pid == pid))
        .unwrap()
        .seq;
    assert_eq!(armed.len(), 2, "{armed:?}");
    assert_eq!(armed[0].1, GuardArming::Loaded);
    assert_eq!(armed[1].1, GuardArming::Readopted);
    assert!(armed[1].0 < killed_seq, "the second guard wrote the kill");
    assert_gap_free(&records);
    guard.stop();
}

#[test]
fn a_new_list_applies_when_the_guard_reads_the_requirements_again() {
    let _turn = turn();
    let place = Place::new();
    let first = place.agent("first", 5003);
    let second = place.agent("second", 5011);
    let dir = private_dir();
    let req = requirements_file(dir.path(), &listing(&[(&first, true)]));
    let state = private_dir();
    let mut guard = Guard::start(&req, state.path());

    requirements_file(dir.path(), &listing(&[(&second, true)]));
    guard.signal(Signal::SIGHUP);
    let line = guard.read_line();
    assert!(
        line.contains(&format!("guarding {}", second.display())),
        "{line}"
    );
    while !guard.read_line().contains("kills are recorded in") {}

    let (_, status) = as_nobody(&format!(
        "exec {} {}",
        first.display(),
        place.out("first").display()
    ));
    assert_eq!(status.code(), Some(0), "no longer listed: it runs");
    let (pid, status) = as_nobody(&format!("exec {}", second.display()));
    assert_killed(status, "the newly listed program");
    kill_of(&guard, pid);
    assert!(guard.log().iter().any(|r| matches!(&r.event,
        Event::GuardArmed(a) if a.how == GuardArming::Updated)));
    guard.stop();
}

#[test]
fn a_guard_left_in_the_kernel_is_removed_once_nothing_is_listed() {
    let _turn = turn();
    let place = Place::new();
    let agent = place.agent("agent", 6007);
    let dir = private_dir();
    let req = requirements_file(dir.path(), &listing(&[(&agent, true)]));
    let state = private_dir();
    Guard::start(&req, state.path()).crash();
    assert_eq!(pins().len(), 1);

    let empty = requirements_file(dir.path(), "schema_version = 1\n");
    let out = Command::new(warden_bin())
        .args(["guard", "--requirements", &empty, "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(pins().is_empty(), "pins left: {:?}", pins());
    let (_, status) = as_nobody(&format!(
        "exec {} {}",
        agent.display(),
        place.out("after").display()
    ));
    assert_eq!(status.code(), Some(0), "no longer guarded: it runs");
    let records = warden::audit_log::read(&state.path().join("guard/events.jsonl")).unwrap();
    assert!(
        matches!(&records.last().unwrap().event, Event::GuardDisarmed(d) if d.unpinned),
        "{:?}",
        records.last()
    );
}
