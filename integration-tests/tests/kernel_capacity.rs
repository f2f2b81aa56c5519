//! The kernel's limit of programs on one hook (64 per tracepoint, 38 per kernel function, for
//! the whole machine): a session that finds a hook full waits for room, says so, and starts
//! when there is room; given up meanwhile, it leaves nothing behind. It never runs its
//! command with a hook missing.
//!
//! The hooks are filled by this test with programs of its own (the probes object's
//! `sched_process_exec` tracepoint program, loaded once per slot), so that the limit is the
//! kernel's own and no session has to be held open.
use std::{
    collections::BTreeSet,
    io::Read as _,
    path::PathBuf,
    process::{Child, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use aya::{
    Btf, Ebpf, EbpfLoader,
    programs::{FEntry, TracePoint},
};
use warden::{
    events::Event,
    kernel::{
        hook_tier::syscall_function,
        programs::{self, PROBES_OBJECT},
    },
};
use warden_integration_tests::*;

/// The tests fill hooks every session needs: they take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// More than any kernel allows on one tracepoint: reaching it means there is no limit to test.
const MOST: usize = 200;
const FULL_MESSAGE: &str = "the kernel allows no more programs on the hook of warden_exec";

/// Attaches copies of a do-nothing program to `sched_process_exec` until the kernel refuses one
/// with E2BIG; they stay attached while the value lives.
fn fill_the_exec_tracepoint() -> Vec<Ebpf> {
    let mut fillers = Vec::new();
    loop {
        assert!(
            fillers.len() < MOST,
            "the kernel took {MOST} programs on one tracepoint"
        );
        let mut ebpf = Ebpf::load(PROBES_OBJECT).expect("parsing the probes object");
        let tp: &mut TracePoint = ebpf
            .program_mut("probe_tp")
            .expect("probe_tp")
            .try_into()
            .expect("a tracepoint program");
        tp.load().expect("loading probe_tp");
        match tp.attach("sched", "sched_process_exec") {
            Ok(_) => fillers.push(ebpf),
            Err(e) if programs::is_full(&e) => return fillers,
            Err(e) => panic!("attaching filler {}: {e}", fillers.len()),
        }
    }
}

/// Attaches copies of a do-nothing fentry program to kernel function `function` until the
/// kernel refuses one with E2BIG; `Err` says why none could be (a kernel without fentry).
fn fill_the_function(function: &str) -> Result<Vec<Ebpf>, String> {
    let btf = Btf::from_sys_fs().map_err(|e| format!("no kernel BTF: {e}"))?;
    let mut fillers = Vec::new();
    loop {
        assert!(
            fillers.len() < MOST,
            "the kernel took {MOST} programs on {function}"
        );
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .load(PROBES_OBJECT)
            .expect("parsing the probes object");
        let p: &mut FEntry = ebpf
            .program_mut("probe_fentry")
            .expect("probe_fentry")
            .try_into()
            .expect("an fentry program");
        match p.load(function, &btf) {
            Ok(()) => {}
            Err(e) if fillers.is_empty() => return Err(e.to_string()),
            Err(e) => panic!("loading filler {}: {e}", fillers.len()),
        }
        match p.attach() {
            Ok(_) => fillers.push(ebpf),
            Err(e) if programs::is_full(&e) => return Ok(fillers),
            Err(e) if fillers.is_empty() => return Err(e.to_string()),
            Err(e) => panic!("attaching filler {}: {e}", fillers.len()),
        }
    }
}

/// A root `warden run` whose stderr is collected as it comes.
struct Waiting {
    child: Child,
    stderr: Arc<Mutex<String>>,
    _state: tempfile::TempDir,
}

impl Waiting {
    fn start(cmd: &[&str]) -> Self {
        let state = private_dir();
        let mut child = warden_command(state.path(), &[], cmd)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting warden");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self {
            child,
            stderr,
            _state: state,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn said(&self, what: &str) -> bool {
        self.stderr().contains(what)
    }

    fn has_log(&self) -> bool {
        the_log(self._state.path()).is_some()
    }

    fn wait(self) -> (std::process::ExitStatus, String) {
        let (status, stderr, _) = self.wait_for_tier();
        (status, stderr)
    }

    /// Also the hook tier the session's log names, if it started.
    fn wait_for_tier(mut self) -> (std::process::ExitStatus, String, Option<String>) {
        let status = self.child.wait().unwrap();
        // The reader thread gets the end of the pipe right after the exit.
        wait_for(Duration::from_secs(2), || self.said("\n"));
        let tier = the_log(self._state.path()).map(|log| {
            let records = warden::audit_log::read(&log).expect("parsing the log");
            match &records[0].event {
                Event::SessionStart(s) => s.hook_tier.clone(),
                other => panic!("the log starts with {}", other.kind()),
            }
        });
        (status, self.stderr(), tier)
    }
}

/// The sessions' cgroups (where `warden run` makes them on this machine's cgroup2 mount).
fn session_cgroups() -> BTreeSet<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup/warden")
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default()
}

#[test]
fn a_session_finding_a_hook_full_waits_says_so_and_starts_when_there_is_room() {
    require_root();
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cgroups_before = session_cgroups();
    let mut fillers = fill_the_exec_tracepoint();
    println!(
        "the kernel took {} more programs on sched_process_exec",
        fillers.len()
    );
    assert!(!fillers.is_empty(), "nothing could be attached");

    // Full: the session waits, says why, and its command has not run.
    let waiting = Waiting::start(&["sh", "-c", "echo ran"]);
    assert!(
        wait_for(Duration::from_secs(20), || waiting.said(FULL_MESSAGE)),
        "no word of the full hook: {}",
        waiting.stderr()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        waiting.child.id() > 0 && alive(waiting.child.id()),
        "it gave up: {}",
        waiting.stderr()
    );
    assert!(!waiting.has_log(), "a session started without its programs");

    // Given up while waiting (Ctrl-C, or `kill -INT`): it ends at once and leaves nothing.
    let given_up = Waiting::start(&["true"]);
    assert!(wait_for(Duration::from_secs(20), || given_up.said(FULL_MESSAGE)));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(given_up.child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let no_log = !given_up.has_log();
    let (status, stderr) = given_up.wait();
    assert_ne!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("SIGINT received while waiting for room in the kernel"),
        "{stderr}"
    );
    assert!(no_log, "a log was made for a session that never started");

    // One slot freed: the first session starts and ends as any other.
    drop(fillers.pop());
    let (status, stderr) = waiting.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("there is room now; the session starts"),
        "{stderr}"
    );
    drop(fillers);
    assert_eq!(
        session_cgroups(),
        cgroups_before,
        "session cgroups left behind"
    );
}

/// Where the file calls are observed by fexit (the fentry and bpf_lsm tiers), their kernel
/// functions hold 38 programs each: a full one is waited for, and the session then starts at
/// the tier it would have had. Falling back to the tracepoint tier meanwhile would be quieter,
/// and on bpf_lsm kernels it would drop the LSM layer.
#[test]
fn a_full_kernel_function_is_waited_for_not_fallen_back_from() {
    require_root();
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let function = syscall_function("openat");
    let mut fillers = match fill_the_function(&function) {
        Ok(fillers) => fillers,
        Err(why) => {
            println!("skipped: this kernel takes no fentry program on {function}: {why}");
            return;
        }
    };
    println!(
        "the kernel took {} more programs on {function}",
        fillers.len()
    );
    let waiting = Waiting::start(&["true"]);
    let full = "the kernel allows no more programs on the hook of warden_fexit_openat";
    assert!(
        wait_for(Duration::from_secs(120), || waiting.said(full)),
        "no word of the full function: {}",
        waiting.stderr()
    );
    assert!(!waiting.has_log(), "a session started without its programs");
    drop(fillers.pop());
    let (status, stderr, tier) = waiting.wait_for_tier();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("there is room now"), "{stderr}");
    let tier = tier.expect("the session's log");
    println!("the session started at the {tier} tier");
    assert_ne!(tier, "tracepoint", "fell back: {stderr}");
}
