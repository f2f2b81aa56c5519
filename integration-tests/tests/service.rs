//! The Warden service (wardend): ordinary users start sessions through its socket; they are
//! confined and recorded as root's are; who may, and which flags, is the requirements' and
//! root's; the terminal's signals reach the command; a hang-up ends the session; a restart
//! or a crash of the daemon leaves sessions confined, and they are taken back.
use std::{
    os::unix::{
        fs::PermissionsExt as _,
        process::{CommandExt as _, ExitStatusExt as _},
    },
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Duration,
};

use warden::events::{EndReason, Event, Record};
use warden_integration_tests::{
    assert_gap_free, assert_nothing_left, finish, private_dir, service::Daemon, wait_for,
    warden_command,
};

/// The hundred sessions at once load this 2-core machine for most of a minute: the other
/// tests, which wait for a prompt or a session's end within seconds, do not run beside them.
static LOAD: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn beside_others() -> std::sync::RwLockReadGuard<'static, ()> {
    LOAD.read().unwrap_or_else(|e| e.into_inner())
}

const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;
const ALLOW_NOBODY: &str = "[service]\nallowed_users = [\"nobody\"]\n";

/// A workspace the user owns, and a directory they own outside every write root.
fn user_dirs() -> (tempfile::TempDir, tempfile::TempDir) {
    let ws = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(ws.path(), Some(NOBODY), Some(NOGROUP)).unwrap();
    let outside = private_dir();
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(outside.path(), Some(NOBODY), Some(NOGROUP)).unwrap();
    (ws, outside)
}

fn records(log: &Path) -> Vec<Record> {
    warden::audit_log::read(log).expect("parsing the log")
}

fn end_of(records: &[Record]) -> &warden::events::SessionEnd {
    match &records.last().expect("records").event {
        Event::SessionEnd(e) => e,
        other => panic!("last record is {other:?}"),
    }
}

/// A file sessions wait for: held open until the test opens the gate.
struct Gate {
    _dir: tempfile::TempDir,
    file: PathBuf,
    /// The shell loop that waits for it.
    wait: String,
}

impl Gate {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("warden-gate-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.path().join("open");
        let wait = format!("while [ ! -e {} ]; do sleep 1; done", file.display());
        Self {
            _dir: dir,
            file,
            wait,
        }
    }

    fn open(&self) {
        std::fs::write(&self.file, "").unwrap();
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_user_without_root_gets_a_session_confined_and_recorded_as_roots() {
    let _load = beside_others();
    let daemon = Daemon::start(ALLOW_NOBODY);
    let (ws, outside) = user_dirs();
    let script = format!(
        "id -u; echo made > made.txt; echo x > {}/planted 2>/dev/null; echo OUTSIDE=$?; exit 7",
        outside.path().display()
    );
    let out = daemon
        .run_as(NOBODY, NOGROUP, ws.path(), &[], &["sh", "-c", &script])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stdout}{stderr}");
    assert!(stdout.starts_with("65534\n"), "{stdout}");
    assert!(
        stdout.contains("OUTSIDE=1") || stdout.contains("OUTSIDE=2"),
        "{stdout}"
    );
    assert!(ws.path().join("made.txt").exists());
    assert!(
        !outside.path().join("planted").exists(),
        "written outside the write roots"
    );
    let logs = daemon.logs();
    assert_eq!(logs.len(), 1, "{stderr}");
    let by_service = records(&logs[0]);
    assert_gap_free(&by_service);

    // The same session started by root.
    let ws_arg = ws.path().display().to_string();
    let state = private_dir();
    let out_root = warden_command(
        state.path(),
        &["--user", "nobody", "--workspace", &ws_arg],
        &["sh", "-c", &script],
    )
    .output()
    .unwrap();
    let root = finish(state, out_root);
    assert_eq!(root.status.code(), Some(7));
    assert_eq!(root.stdout, stdout, "what the command printed");
    let start = match &by_service[0].event {
        Event::SessionStart(s) => s,
        other => panic!("{other:?}"),
    };
    assert_nothing_left(start);
    assert_eq!(
        (&start.user, start.uid, &start.workspace, &start.layers),
        (
            &root.start().user,
            root.start().uid,
            &root.start().workspace,
            &root.start().layers
        )
    );
    let execs = |r: &[Record]| -> Vec<String> {
        r.iter()
            .filter_map(|r| match &r.event {
                Event::Exec(e) => Some(e.filename.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(execs(&by_service), execs(&root.records));
    let kinds = |r: &[Record]| -> std::collections::BTreeSet<&'static str> {
        r.iter().map(|r| r.event.kind()).collect()
    };
    assert_eq!(kinds(&by_service), kinds(&root.records));
    assert_eq!(end_of(&by_service).reason, EndReason::Exited);
    assert_eq!(end_of(&by_service).status, 7);

    // `warden status` shows nothing once it is over.
    let status = daemon
        .as_user(NOBODY, NOGROUP, ws.path(), &["status"])
        .output()
        .unwrap();
    assert_eq!(text(&status).0, "no live sessions\n");
}

/// The user's environment is the command's, never root's: a debug build's launcher would
/// leave Landlock out for `WARDEN_TEST_WITHOUT=landlock`, and the supervisor would load a
/// preloaded library.
#[test]
fn the_users_environment_reaches_neither_the_supervisor_nor_the_launcher() {
    let _load = beside_others();
    let daemon = Daemon::start(ALLOW_NOBODY);
    let (ws, outside) = user_dirs();
    let script = format!(
        "echo WITHOUT=$WARDEN_TEST_WITHOUT; echo x > {}/planted 2>/dev/null; echo OUTSIDE=$?",
        outside.path().display()
    );
    let out = daemon
        .run_as(NOBODY, NOGROUP, ws.path(), &[], &["sh", "-c", &script])
        .env(warden_agent::test_layers::ENV, "landlock,signal-rules")
        .env("LD_PRELOAD", "/nonexistent/evil.so")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("WITHOUT=\n"), "{stdout}");
    assert!(
        stdout.contains("OUTSIDE=1") || stdout.contains("OUTSIDE=2"),
        "{stdout}"
    );
    assert!(!outside.path().join("planted").exists());
    // The supervisor ran: it would have said so on stderr had it failed to preload.
    assert!(stderr.contains("warden: session"), "{stderr}");
}

#[test]
fn who_may_start_sessions_and_with_which_flags_is_not_the_users_choice() {
    let _load = beside_others();
    let daemon = Daemon::start(ALLOW_NOBODY);
    let (ws, _outside) = user_dirs();
    // uid 1 (daemon) is not listed.
    let out = daemon
        .run_as(1, 1, Path::new("/"), &[], &["true"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("(uid 1) may not start Warden sessions")
            && stderr.contains("service.allowed_users = [\"nobody\"]")
            && stderr.contains(&daemon.requirements),
        "{stderr}"
    );
    for flag in [
        &["--user", "root"][..],
        &["--requirements", "/nonexistent.toml"],
        &["--state-dir", "/tmp"],
        &["--hook-tier", "tracepoint"],
        &["--network", "observe"],
    ] {
        let out = daemon
            .run_as(NOBODY, NOGROUP, ws.path(), flag, &["true"])
            .output()
            .unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(125), "{flag:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{} is root's to choose", flag[0])),
            "{flag:?}: {stderr}"
        );
    }
    // A session's process cannot start a session of its own (outside its confinement).
    let inner = format!(
        "WARDEN_SOCKET={} {} run --unattended -- true; echo INNER=$?",
        daemon.socket.display(),
        warden_integration_tests::warden_bin().display()
    );
    let out = daemon
        .run_as(NOBODY, NOGROUP, ws.path(), &[], &["sh", "-c", &inner])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("INNER=125"), "{stdout}{stderr}");
    // Kernels with cgroup connect_unix programs (6.7+) refuse the connection to the host's
    // socket; older ones reach the daemon, which refuses a session's process.
    let refused_by =
        if stderr.contains("a process of a Warden session cannot start another session") {
            "the daemon"
        } else if stderr.contains("does not answer (Operation not permitted") {
            "the kernel"
        } else {
            panic!("not refused: {stderr}")
        };
    println!("the inner session was refused by {refused_by}");
    assert_eq!(daemon.logs().len(), 1, "only the outer session");

    // A client that connects and says nothing, or says nonsense, is hung up on; meanwhile
    // others are served.
    use std::io::{Read as _, Write as _};
    let mut silent = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    let mut garbage = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    garbage.write_all(&[0, 0, 0, 3, b'{', b'x', b'}']).unwrap();
    let out = daemon
        .run_as(NOBODY, NOGROUP, ws.path(), &[], &["true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    assert_eq!(garbage.read_to_end(&mut rest).unwrap(), 0);
    assert_eq!(silent.read_to_end(&mut rest).unwrap(), 0, "closed");
    assert!(started.elapsed() < Duration::from_secs(15));

    // A client naming a directory it is not in (root would enter it for the user) is refused:
    // the session starts where the kernel says the client is.
    use std::os::fd::AsFd as _;
    use warden::service::protocol::{self, Bytes, Reply, Request, StartRequest};
    let elsewhere = private_dir();
    let claimed = elsewhere.path().display().to_string();
    let forged = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    let request = Request::Start(Box::new(StartRequest {
        version: protocol::VERSION,
        args: ["run", "--", "true"]
            .map(|a| Bytes(a.as_bytes().to_vec()))
            .to_vec(),
        cwd: Bytes(claimed.clone().into_bytes()),
        env: Vec::new(),
        user_config: None,
    }));
    protocol::write_frame(&mut &forged, &request).unwrap();
    warden_agent::fd_passing::send_fds(forged.as_fd(), &[0, 1, 2]).unwrap();
    match protocol::read_frame::<Reply>(&mut &forged).unwrap() {
        Reply::Refused { message } => assert_eq!(
            message,
            format!(
                "the client names {claimed} as its current directory, but it is in {}",
                std::env::current_dir().unwrap().display()
            )
        ),
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(
        daemon.logs().len(),
        2,
        "a session was started for the forged request"
    );
}

/// Waits until the session's command printed `ready` (its first line).
fn wait_ready(child: &mut std::process::Child) -> std::io::BufReader<std::process::ChildStdout> {
    use std::io::BufRead as _;
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    stdout
}

/// `sh -c SCRIPT` as nobody through the daemon, its stdin and stdout piped, once it printed
/// `ready`.
fn started(
    daemon: &Daemon,
    ws: &Path,
    script: &str,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
) {
    let mut child = daemon
        .run_as(NOBODY, NOGROUP, ws, &[], &["sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = wait_ready(&mut child);
    (child, stdout)
}

#[test]
fn the_terminals_signals_reach_the_command_and_a_hang_up_ends_the_session() {
    let _load = beside_others();
    use std::io::Read as _;
    let daemon = Daemon::start(ALLOW_NOBODY);
    let (ws, _outside) = user_dirs();
    let script = "trap 'echo got-int; exit 9' INT; echo ready; sleep 30 & wait";
    // Ctrl-C: the client gets SIGINT, the command's process group too; it exits its way.
    let (mut child, mut stdout) = started(&daemon, ws.path(), script);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(9), "{rest}");
    assert_eq!(rest, "got-int\n");

    // The terminal hangs up (SIGHUP to the client): the session ends at once.
    for (signal, status) in [
        (nix::sys::signal::Signal::SIGHUP, Some(129)),
        // The client killed: nobody is left to answer it; the session ends too.
        (nix::sys::signal::Signal::SIGKILL, None),
    ] {
        let before = daemon.logs().len();
        let (mut child, _stdout) = started(&daemon, ws.path(), "echo ready; exec sleep 30");
        let since = std::time::Instant::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let got = child.wait().unwrap();
        assert_eq!(got.code(), status, "{signal}");
        if status.is_none() {
            assert_eq!(got.signal(), Some(9));
        }
        // The session's log ends within seconds, not the 30 s of its sleep.
        let logs = daemon.logs();
        assert_eq!(logs.len(), before + 1);
        let log = logs
            .into_iter()
            .max_by_key(|l| std::fs::metadata(l).unwrap().modified().unwrap())
            .unwrap();
        assert!(
            wait_for(Duration::from_secs(10), || records(&log)
                .last()
                .is_some_and(|r| matches!(r.event, Event::SessionEnd(_)))),
            "{signal}: the session did not end"
        );
        assert!(since.elapsed() < Duration::from_secs(15));
        let r = records(&log);
        let end = end_of(&r);
        assert_eq!(end.reason, EndReason::Interrupted, "{signal}");
        assert_eq!(end.status, 129, "{signal}");
    }
}

#[test]
fn a_restart_or_a_crash_of_the_daemon_leaves_the_session_confined_and_taken_back() {
    let _load = beside_others();
    let mut daemon = Daemon::start(ALLOW_NOBODY);
    let (ws, outside) = user_dirs();
    let script = format!(
        "echo ready; read go; echo x > {}/planted 2>/dev/null; echo OUTSIDE=$?; exit 4",
        outside.path().display()
    );
    for (how, restart) in [("restart", true), ("crash", false)] {
        let (mut child, mut stdout) = started(&daemon, ws.path(), &script);
        if restart {
            daemon.restart();
        } else {
            daemon.crash();
            daemon.start_again();
        }
        // Taken back: the new daemon lists it.
        let status = daemon
            .as_user(NOBODY, NOGROUP, ws.path(), &["status"])
            .output()
            .unwrap();
        let (listed, err) = text(&status);
        assert!(
            listed.contains("nobody") && listed.contains("read go"),
            "{how}: {listed}{err}"
        );
        // Still confined, and it goes on to its end with its client.
        use std::io::{Read as _, Write as _};
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let code = child.wait().unwrap();
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        assert_eq!(code.code(), Some(4), "{how}: {rest}");
        assert!(
            rest.contains("OUTSIDE=1") || rest.contains("OUTSIDE=2"),
            "{how}: {rest}"
        );
        assert!(!outside.path().join("planted").exists(), "{how}");
    }
    for log in daemon.logs() {
        let r = records(&log);
        assert_gap_free(&r);
        assert_eq!(end_of(&r).reason, EndReason::Exited);
    }
}

#[test]
fn a_session_whose_supervisor_died_while_the_daemon_was_down_is_ended_at_its_start() {
    let _load = beside_others();
    let mut daemon = Daemon::start(ALLOW_NOBODY);
    let (ws, _outside) = user_dirs();
    let (mut child, _stdout) = started(&daemon, ws.path(), "echo ready; exec sleep 60");
    daemon.crash();
    let live = warden::recovery::live(daemon.run.path());
    assert_eq!(live.len(), 1);
    let supervisor = live[0].supervisor_pid;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_for(Duration::from_secs(5), || {
        !warden_integration_tests::alive(supervisor)
    }));
    daemon.start_again();
    let log = &daemon.logs()[0];
    let r = records(log);
    assert_eq!(end_of(&r).reason, EndReason::SupervisorLost);
    assert!(warden::recovery::live(daemon.run.path()).is_empty());
    // Its client learns the session is gone.
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(125));
    let _ = Command::new("true").status();
}

#[test]
fn a_socket_passed_as_systemd_passes_it_serves_sessions() {
    let _load = beside_others();
    let Some(daemon) = Daemon::start_activated(ALLOW_NOBODY) else {
        println!("skipped: no /usr/bin/systemd-socket-activate (package systemd)");
        return;
    };
    let (ws, _outside) = user_dirs();
    let out = daemon
        .run_as(NOBODY, NOGROUP, ws.path(), &[], &["sh", "-c", "id -u"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "65534\n");
    assert!(
        !daemon.socket.with_file_name("not-activated.sock").exists(),
        "the daemon bound a socket of its own"
    );
    assert_eq!(daemon.logs().len(), 1);
}

/// Ten users of their own (system users, no home), made once per machine.
fn ten_users() -> Vec<(u32, u32)> {
    (0..10)
        .map(|i| {
            let name = format!("warden-test{i}");
            if nix::unistd::User::from_name(&name).unwrap().is_none() {
                let made = Command::new("useradd")
                    .args(["--system", "--no-create-home", "--user-group", &name])
                    .status()
                    .unwrap();
                assert!(made.success(), "useradd {name}");
            }
            let u = nix::unistd::User::from_name(&name).unwrap().unwrap();
            (u.uid.as_raw(), u.gid.as_raw())
        })
        .collect()
}

/// One user cannot hold every session the kernel has room for: the third is refused, saying
/// why, and one ended makes room again.
#[test]
fn a_user_holds_no_more_sessions_at_once_than_the_requirements_allow() {
    let _load = beside_others();
    let daemon = Daemon::start(&format!("{ALLOW_NOBODY}max_sessions_per_user = 2\n"));
    let (ws, _outside) = user_dirs();
    let gate = Gate::new();
    let held: Vec<std::process::Child> = (0..2)
        .map(|_| {
            daemon
                .run_as(
                    NOBODY,
                    NOGROUP,
                    ws.path(),
                    &["-q"],
                    &["sh", "-c", &gate.wait],
                )
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Both started: their clients connect on their own time.
    assert!(wait_for(Duration::from_secs(60), || daemon.logs().len() == 2));
    let third = daemon
        .run_as(NOBODY, NOGROUP, ws.path(), &["-q"], &["true"])
        .output()
        .unwrap();
    let (_, stderr) = text(&third);
    assert_ne!(third.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "user nobody (uid 65534) has 2 Warden sessions running or starting, the most \
             service.max_sessions_per_user = 2 ("
        ),
        "{stderr}"
    );
    assert!(stderr.contains("requirements.toml line 3"), "{stderr}");
    gate.open();
    for child in held {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    }
    assert_eq!(daemon.logs().len(), 2, "the refused session left a log");
    let again = daemon
        .run_as(NOBODY, NOGROUP, ws.path(), &["-q"], &["true"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again).1);
}

/// The sessions stay until all have started or the rest wait: more than the kernel allows
/// programs on one hook (64 per tracepoint, 38 per kernel function) run at once, and those
/// beyond wait for room, say so, and start when others end.
#[test]
fn a_hundred_sessions_started_at_once_by_ten_users_all_end_cleanly() {
    let _alone = LOAD.write().unwrap_or_else(|e| e.into_inner());
    let users = ten_users();
    let names: Vec<String> = (0..10).map(|i| format!("\"warden-test{i}\"")).collect();
    let daemon = Daemon::start(&format!(
        "[service]\nallowed_users = [{}]\n",
        names.join(", ")
    ));
    let workspaces: Vec<tempfile::TempDir> = users
        .iter()
        .map(|&(uid, gid)| {
            let ws = tempfile::tempdir().unwrap();
            std::os::unix::fs::chown(ws.path(), Some(uid), Some(gid)).unwrap();
            ws
        })
        .collect();
    let gate = Gate::new();
    let script = format!("id -u; {}", gate.wait);
    // Each client's stderr in a file, read while the sessions run.
    let said = tempfile::tempdir().unwrap();
    let stderr_of = |i: usize| said.path().join(i.to_string());
    let clients: Vec<(u32, std::process::Child)> = (0..100)
        .map(|i| {
            let (uid, gid) = users[i % 10];
            let child = daemon
                .run_as(
                    uid,
                    gid,
                    workspaces[i % 10].path(),
                    &["-q"],
                    &["sh", "-c", &script],
                )
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(stderr_of(i)).unwrap())
                .spawn()
                .unwrap();
            (uid, child)
        })
        .collect();
    const FULL: &str = "the kernel allows no more programs";
    let waiting = || {
        (0..100)
            .filter(|&i| std::fs::read_to_string(stderr_of(i)).is_ok_and(|t| t.contains(FULL)))
            .count()
    };
    // Every session has started or says it waits for room.
    let all_in = wait_for(Duration::from_secs(240), || {
        daemon.logs().len() + waiting() == 100
    });
    let (started, waited) = (daemon.logs().len(), waiting());
    println!("{started} sessions ran at once, {waited} waited for room");
    assert!(all_in, "{started} ran at once, {waited} waited for room");
    gate.open();
    for (i, (uid, child)) in clients.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = std::fs::read_to_string(stderr_of(i)).unwrap();
        assert_eq!(out.status.code(), Some(0), "uid {uid}: {stderr}");
        assert_eq!(stdout, format!("{uid}\n"));
        if stderr.contains(FULL) {
            assert!(stderr.contains("there is room now"), "{stderr}");
        }
    }
    let logs = daemon.logs();
    assert_eq!(logs.len(), 100);
    let mut per_user = std::collections::BTreeMap::new();
    for log in logs {
        let r = records(&log);
        assert_gap_free(&r);
        let Event::SessionStart(start) = &r[0].event else {
            panic!("{}", log.display())
        };
        *per_user.entry(start.uid).or_insert(0) += 1;
        assert_nothing_left(start);
        assert_eq!(end_of(&r).reason, EndReason::Exited, "{}", log.display());
    }
    assert!(per_user.values().all(|&n| n == 10), "{per_user:?}");
    assert!(warden::recovery::live(daemon.run.path()).is_empty());
    let left: Vec<_> = std::fs::read_dir(daemon.run.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left in the run directory: {left:?}");
}

#[test]
fn the_service_delivers_telemetry_the_collector_missed() {
    let _load = beside_others();
    if warden_integration_tests::collector::rotel_available().is_none() {
        println!("skipped: no rotel collector here");
        return;
    }
    let url = "http://127.0.7.9:4790";
    let daemon = Daemon::start_with_flags(
        &format!(
            "{ALLOW_NOBODY}[telemetry]\notlp_endpoint = \"{url}\"\notlp_protocol = \"grpc\"\n"
        ),
        &["--export-interval-secs", "1"],
    );
    let (ws, _outside) = user_dirs();
    // Nothing listens yet: the session ends with its telemetry pending.
    let out = daemon
        .run_as(NOBODY, NOGROUP, ws.path(), &[], &["true"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("not all delivered"), "{stderr}");
    let log = &daemon.logs()[0];
    let r = records(log);
    let collector = warden_integration_tests::collector::Collector::start("127.0.7.9", 4790);
    // The daemon, not a person running `warden export`, sends it.
    let got = collector.wait_for_session(&r[0].session, r.len());
    assert_eq!(got.len(), r.len());
}

/// The session's supervisor has no controlling terminal (its client has it): the prompt asks
/// on the client's terminal, and nothing of the agent runs meanwhile (it could read the answer
/// otherwise: it is not in the terminal's process session, so the terminal never stops it).
#[test]
fn a_service_session_asks_at_the_clients_terminal_with_the_agent_frozen() {
    let _load = beside_others();
    use std::io::Write as _;
    use warden_integration_tests::terminal::{in_a_terminal_session, read_until};
    let daemon = Daemon::start(ALLOW_NOBODY);
    let (ws, _outside) = user_dirs();
    let ticks = ws.path().join("ticks");
    let script = "(while :; do echo t >> ticks; sleep 0.05; done) & sleep 0.5; \
                  /usr/bin/printf 'one\\n'; echo FIRST=$?; kill $!; echo DONE";
    let cmd = daemon.as_user(
        NOBODY,
        NOGROUP,
        ws.path(),
        &[
            "run",
            "--exec-rule",
            "prompt=printf",
            "--approval-timeout-secs",
            "30",
            "--dns-upstream",
            "127.0.0.1:9",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    let (mut child, mut master) = in_a_terminal_session(cmd);
    let mut seen = String::new();
    read_until(&mut master, &mut seen, 0, "approve for this session");
    assert!(seen.contains("/usr/bin/printf"), "{seen}");
    let count = || {
        std::fs::read_to_string(&ticks)
            .unwrap_or_default()
            .lines()
            .count()
    };
    std::thread::sleep(Duration::from_millis(300));
    let asked = count();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(count(), asked, "the agent ran while the question was up");
    master.write_all(b"y\n").unwrap();
    read_until(&mut master, &mut seen, 0, "DONE");
    assert!(seen.contains("FIRST=0"), "{seen}");
    assert!(count() > asked, "the agent runs again after the answer");
    assert_eq!(child.wait().unwrap().code(), Some(0), "{seen}");
    let r = records(&daemon.logs()[0]);
    // One question; the exec the freeze interrupted is restarted by the kernel and gets the
    // same answer from memory (no second question), recorded as such.
    let asked = r
        .iter()
        .filter(|r| r.event.kind() == "approval.request")
        .count();
    assert_eq!(asked, 1);
    let approvals: Vec<&warden::events::Approval> = r
        .iter()
        .filter_map(|r| match &r.event {
            Event::Approval(a) => Some(a.as_ref()),
            _ => None,
        })
        .collect();
    assert_eq!(approvals[0].by.as_deref(), Some("the terminal"));
    assert!(
        approvals
            .iter()
            .all(|a| a.verdict == warden::events::Verdict::Allow)
    );
    for again in &approvals[1..] {
        assert!(
            again.reason.contains(&format!(
                "approved moments ago (approval {})",
                approvals[0].id
            )),
            "{}",
            again.reason
        );
    }
}

/// The daemon runs the agent guard from its requirements: a listed program is killed outside
/// sessions and runs inside the daemon's own; a crash of the daemon leaves the guard in the
/// kernel, and the next daemon records what was killed meanwhile.
#[test]
fn the_daemon_guards_the_listed_agent_programs_across_a_crash() {
    let _load = beside_others();
    use std::os::unix::process::ExitStatusExt as _;
    // A copy of touch with bytes of its own (a unique file): if it ran, its file would exist.
    let place = tempfile::tempdir().unwrap();
    std::fs::set_permissions(place.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(place.path(), Some(NOBODY), Some(NOGROUP)).unwrap();
    let agent = place.path().join("agent");
    let mut bytes = std::fs::read("/usr/bin/touch").unwrap();
    bytes.extend(format!("warden-service-test-{}", std::process::id()).bytes());
    std::fs::write(&agent, bytes).unwrap();
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut daemon = Daemon::start(&format!(
        "{ALLOW_NOBODY}[[service.agent_programs]]\npath = \"{}\"\n",
        agent.display()
    ));
    let guard_log = daemon.state.path().join("guard/events.jsonl");
    let kinds = || -> Vec<String> {
        warden::audit_log::read(&guard_log)
            .map(|r| r.iter().map(|r| r.event.kind().to_string()).collect())
            .unwrap_or_default()
    };
    assert!(
        wait_for(Duration::from_secs(20), || kinds()
            .contains(&"guard.armed".to_string())),
        "the daemon did not arm the guard: {:?}",
        kinds()
    );
    let outside = |name: &str| {
        let status = Command::new(&agent)
            .arg(place.path().join(name))
            .uid(NOBODY)
            .gid(NOGROUP)
            .status()
            .unwrap();
        (status.signal(), place.path().join(name).exists())
    };
    assert_eq!(
        outside("a"),
        (Some(9), false),
        "killed before its first instruction"
    );
    let inside = daemon
        .run_as(
            NOBODY,
            NOGROUP,
            place.path(),
            &[],
            &[agent.to_str().unwrap(), "b"],
        )
        .output()
        .unwrap();
    assert_eq!(inside.status.code(), Some(0), "{}", text(&inside).1);
    assert!(place.path().join("b").exists(), "it runs in a session");

    daemon.crash();
    assert_eq!(
        outside("c"),
        (Some(9), false),
        "still killed with no daemon"
    );
    daemon.start_again();
    let killed = || kinds().iter().filter(|k| *k == "guard.killed").count();
    assert!(
        wait_for(Duration::from_secs(20), || killed() == 2),
        "the next daemon records the kill made meanwhile: {:?}",
        kinds()
    );
    drop(daemon);
    // Leave no guard in the kernel: the list made empty removes it.
    let empty = private_dir();
    let req = warden_integration_tests::requirements_file(empty.path(), "");
    let out = Command::new(warden_integration_tests::warden_bin())
        .args(["guard", "--requirements", &req, "--state-dir"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(!warden::agent_guard::pinned());
}
