//! Harness for Warden's end-to-end tests: they run the real `warden` binary as root on the real
//! kernel (real eBPF programs, cgroups and processes) and read the audit log it wrote.
//!
//! Every session run through this harness is also checked for leftovers: its cgroup must be
//! gone and none of its kernel programs may still be loaded.
use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Output},
    time::{Duration, Instant},
};

pub mod collector;
pub mod kernels;
pub mod keyring;
pub mod net;
pub mod service;
pub mod terminal;

pub use warden::events::{Event, Exec, Exit, Record, SessionEnd, SessionStart};

/// What a session recorded, picked by the records' events and mapped: the one record query of
/// the tests. `picked!(s, Event::Approval(a) => a.as_ref())` gives every approval;
/// arms take guards and may be several; `picked!(record r in s, ...)` also binds the record.
#[macro_export]
macro_rules! picked {
    (record $r:ident in $s:expr, $($pat:pat $(if $guard:expr)? => $out:expr),+ $(,)?) => {
        $s.records
            .iter()
            .filter_map(|$r| match &$r.event {
                $($pat $(if $guard)? => Some($out),)+
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    ($s:expr, $($pat:pat $(if $guard:expr)? => $out:expr),+ $(,)?) => {
        $crate::picked!(record record in $s, $($pat $(if $guard)? => $out),+)
    };
}

/// The `warden` binary of this build (built by `cargo build --bins` before the tests).
pub fn warden_bin() -> PathBuf {
    // target/<profile>/deps/<test binary> -> target/<profile>/warden
    let exe = std::env::current_exe().expect("current_exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .join("warden");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --bins` before the integration tests (scripts/test.sh does)",
        bin.display()
    );
    bin
}

pub fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the integration tests load eBPF programs and create cgroups: run them as root"
    );
}

/// A finished session.
pub struct Session {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub log: PathBuf,
    pub records: Vec<Record>,
    pub state: tempfile::TempDir,
}

impl Session {
    pub fn start(&self) -> &SessionStart {
        match &self.records[0].event {
            Event::SessionStart(s) => s,
            other => panic!("first record is {other:?}"),
        }
    }

    pub fn end(&self) -> &SessionEnd {
        match &self.records.last().expect("records").event {
            Event::SessionEnd(e) => e,
            other => panic!("last record is {other:?}"),
        }
    }

    pub fn execs(&self) -> Vec<&Exec> {
        picked!(self, Event::Exec(e) => e)
    }

    pub fn exits(&self) -> Vec<&Exit> {
        picked!(self, Event::Exit(e) => e)
    }

    pub fn count(&self, kind: &str) -> usize {
        self.records
            .iter()
            .filter(|r| r.event.kind() == kind)
            .count()
    }

    /// Sum of `events.lost` records.
    pub fn lost(&self) -> warden::events::EventsLost {
        let mut sum = warden::events::EventsLost::default();
        for r in &self.records {
            if let Event::EventsLost(l) = &r.event {
                sum.exec += l.exec;
                sum.fork += l.fork;
                sum.exit += l.exit;
                sum.network += l.network;
                sum.file += l.file;
                sum.unix += l.unix;
                sum.undecodable += l.undecodable;
                sum.total = l.total;
            }
        }
        sum
    }

    /// The one exec of `path`, or a panic listing what was recorded.
    pub fn exec_of(&self, path: &str) -> &Exec {
        let found: Vec<_> = self
            .execs()
            .into_iter()
            .filter(|e| e.filename == path)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one exec of {path}, got {found:?}\n{}",
            self.stderr
        );
        found[0]
    }
}

/// A fresh root-only directory for Warden's own files (state, run directory). Not under /tmp:
/// the sessions protect these, and a protected path inside a write root makes that root's
/// directory reject new files.
pub fn private_dir() -> tempfile::TempDir {
    let base = Path::new("/var/lib/warden-tests");
    std::fs::create_dir_all(base).expect("creating /var/lib/warden-tests");
    tempfile::tempdir_in(base).expect("tempdir")
}

/// A requirements file where Warden trusts it: root-owned, nobody else can write it or any
/// directory above it (`dir` should be a `private_dir`).
pub fn requirements_file(dir: &Path, text: &str) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let f = dir.join("requirements.toml");
    std::fs::write(&f, text).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    f.display().to_string()
}

/// `warden run --state-dir <fresh dir> [args] -- cmd...`, waiting for it to finish.
pub fn run_session<A: AsRef<OsStr>>(args: &[&str], cmd: &[A]) -> Session {
    let state = private_dir();
    let out = warden_command(state.path(), args, cmd)
        .output()
        .expect("running warden");
    finish(state, out)
}

pub fn warden_command<A: AsRef<OsStr>>(state: &Path, args: &[&str], cmd: &[A]) -> Command {
    require_root();
    let mut c = Command::new(warden_bin());
    c.arg("run").arg("--state-dir").arg(state).args(args);
    // Tests never send DNS to the machine's own resolver (a private-range address): unless a
    // test names its upstream, allowed names go to a loopback port where nothing listens.
    if !args.contains(&"--dns-upstream") {
        c.args(["--dns-upstream", "127.0.0.1:9"]);
    }
    // Nobody answers approval requests in a test unless it says how they are answered.
    let about_approvals = ["--reviewer", "--approval-policy", "--approval-timeout-secs"];
    if !args.iter().any(|a| about_approvals.contains(a)) {
        c.arg("--unattended");
    }
    c.arg("--")
        .args(cmd)
        .env_remove("SUDO_UID")
        .env_remove("SUDO_GID");
    c
}

/// Reads the session's log and checks that it left nothing behind.
pub fn finish(state: tempfile::TempDir, out: Output) -> Session {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // Warden's own errors (tracing, `ERROR warden::...`) never belong in a normal session.
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("warden::"))
        .collect();
    assert!(
        errors.is_empty(),
        "warden logged errors:\n{}",
        errors.join("\n")
    );
    let log = the_log(state.path()).unwrap_or_else(|| panic!("no session log; stderr:\n{stderr}"));
    let text = std::fs::read_to_string(&log).expect("reading the log");
    for (n, line) in text.lines().enumerate() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("{}:{}: invalid JSON ({e}): {line}", log.display(), n + 1));
    }
    let records = warden::audit_log::read(&log).expect("parsing the log");
    let session = Session {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        log,
        records,
        state,
    };
    assert_gap_free(&session.records);
    assert_nothing_left(session.start());
    session
}

/// The single session log under a state directory.
pub fn the_log(state: &Path) -> Option<PathBuf> {
    let sessions = std::fs::read_dir(state.join("sessions")).ok()?;
    let dirs: Vec<_> = sessions.filter_map(|e| e.ok()).collect();
    assert!(dirs.len() <= 1, "one session per state directory");
    Some(dirs.first()?.path().join("events.jsonl"))
}

pub fn assert_gap_free(records: &[Record]) {
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64, "sequence numbers must be gap-free");
    }
    let session = &records[0].session;
    assert!(records.iter().all(|r| &r.session == session));
}

/// The session's cgroup is removed and none of its kernel programs is still loaded.
pub fn assert_nothing_left(start: &SessionStart) {
    assert!(
        !Path::new(&start.cgroup).exists(),
        "session cgroup {} still exists",
        start.cgroup
    );
    let unix = if start
        .missing_layers
        .iter()
        .any(|l| l == "unix_socket_hooks")
    {
        0
    } else {
        2
    };
    // File calls: the two syscall tracepoints, or an fexit program per call (14 on x86-64),
    // and on the bpf_lsm tier 12 LSM programs.
    let (file, lsm) = match start.hook_tier.as_str() {
        "tracepoint" => (2, 0),
        "fentry" => (14, 0),
        "bpf_lsm" => (14, 12),
        other => panic!("unknown hook tier {other:?}"),
    };
    // One more, the ICMP egress program, where the policy allows ICMP.
    let n = start.kernel_programs.len();
    let base = 3 + file + lsm + 6 + unix;
    assert!(
        n == base || n == base + 1,
        "3 process, {file} file-call, {lsm} LSM, 6 network, {unix} UNIX socket programs (and \
         ICMP's): {n}"
    );
    // The kernel frees a program after an RCU grace period once its last fd is closed, so a
    // program can show for a moment after Warden exits; a leaked one stays.
    let still_loaded = || -> Vec<u32> {
        let loaded: Vec<u32> = aya::programs::loaded_programs()
            .filter_map(|p| p.ok().map(|p| p.id()))
            .collect();
        start
            .kernel_programs
            .iter()
            .copied()
            .filter(|id| loaded.contains(id))
            .collect()
    };
    // fexit and LSM links detach after RCU grace periods: seconds under emulation.
    wait_for(Duration::from_secs(30), || still_loaded().is_empty());
    assert_eq!(
        still_loaded(),
        Vec::<u32>::new(),
        "kernel programs still loaded"
    );
}

/// The file calls the session recorded, each with its kind (`open`, `link`, `rename`...).
pub fn file_events(s: &Session) -> Vec<(&'static str, &warden::events::FileAccess)> {
    s.records
        .iter()
        .filter_map(|r| {
            let kind = r.event.kind().strip_prefix("file.")?;
            Some((kind, r.event.file_access()?))
        })
        .collect()
}

/// The value of a `LABEL=value` line that a session's script printed (what an attempt got).
pub fn status_of(s: &Session, label: &str) -> String {
    s.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{label}=")))
        .unwrap_or_else(|| panic!("{label} not reported:\n{}\n{}", s.stdout, s.stderr))
        .to_string()
}

/// Reads `name=value` lines a test's shell printed about itself (`echo sh=$$`): ground truth
/// for process trees.
pub fn reported_pid(stdout: &str, name: &str) -> u32 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name}= not printed in {stdout:?}"))
        .trim()
        .parse()
        .unwrap()
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Whether a process exists (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
