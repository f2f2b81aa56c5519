//! Escape attempts (docs/escape-attempts.md): each must fail, and the audit log must show it.
use std::{os::unix::fs::PermissionsExt, path::Path};

use warden::events::{ExecRequest, SyscallDenied, TokenProblem, Verdict};
use warden_integration_tests::*;

fn bin(name: &str) -> String {
    warden_bin().with_file_name(name).display().to_string()
}

/// A refused file call on `path` is in the log.
fn assert_refused(s: &Session, op: &str, path: &str) {
    let found = file_events(s).into_iter().any(|(o, f)| {
        o == op && (f.path == path || f.path2.as_deref() == Some(path)) && f.result != "ok"
    });
    assert!(
        found,
        "no refused file.{op} of {path} in the log:\n{:#?}",
        file_events(s)
    );
}

fn exec_requests(s: &Session) -> Vec<&ExecRequest> {
    picked!(s, Event::ExecRequest(e) => &**e)
}

fn denied_syscalls(s: &Session) -> Vec<&SyscallDenied> {
    picked!(s, Event::SyscallDenied(d) => d)
}

#[test]
fn file_system_escapes_fail_and_are_recorded() {
    let ws = tempfile::tempdir().unwrap();
    let w = ws.path().display().to_string();
    let tag = std::process::id();
    let outside = format!("/etc/warden-escape-{tag}");
    std::fs::write(&outside, "original\n").unwrap();
    std::fs::create_dir_all("/root/.ssh").unwrap();
    let secret = format!("/root/.ssh/warden-escape-{tag}");
    std::fs::write(&secret, "SECRET\n").unwrap();
    let state = private_dir();
    let script = format!(
        "cd {w}
         echo x > {outside}; echo WRITE=$?
         ln -s {outside} link; echo y > link; echo SYMLINK=$?
         ln {outside} hard; echo HARDLINK=$?
         touch mine; mv mine {outside}-moved 2>/dev/null; echo RENAME_OUT=$?
         cat {secret}; echo READ=$?
         ln -s {secret} sec; cat sec; echo READ_SYMLINK=$?
         cat /proc/self/root{secret}; echo READ_PROC_ROOT=$?
         echo $$ > /sys/fs/cgroup/unified/cgroup.procs; echo CGROUP_LEAVE=$?
         for f in {state}/sessions/*/events.jsonl; do echo forged >> $f; echo AUDIT_LOG=$?; done
         rm -rf /sys/fs/bpf/warden; echo UNPIN=$?",
        state = state.path().display()
    );
    let out = warden_command(state.path(), &["--workspace", &w], &["sh", "-c", &script])
        .output()
        .unwrap();
    let s = finish(state, out);
    std::fs::remove_file(&secret).unwrap();
    for label in [
        "WRITE",
        "SYMLINK",
        "HARDLINK",
        "RENAME_OUT",
        "READ",
        "READ_SYMLINK",
        "READ_PROC_ROOT",
        "CGROUP_LEAVE",
        "AUDIT_LOG",
        "UNPIN",
    ] {
        assert_ne!(
            status_of(&s, label),
            "0",
            "{label} succeeded:\n{}\n{}",
            s.stdout,
            s.stderr
        );
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "original\n");
    assert!(!Path::new(&format!("{outside}-moved")).exists());
    assert!(!s.stdout.contains("SECRET"));
    std::fs::remove_file(&outside).unwrap();

    assert_refused(&s, "open", &outside);
    assert_refused(&s, "open", "link");
    assert_refused(&s, "link", &outside);
    assert_refused(&s, "open", &format!("{outside}-moved"));
    assert_refused(&s, "open", &secret);
    assert_refused(&s, "open", "sec");
    assert_refused(&s, "open", &format!("/proc/self/root{secret}"));
    assert_refused(&s, "open", "/sys/fs/cgroup/unified/cgroup.procs");
    assert!(
        file_events(&s).iter().any(|(o, f)| *o == "open"
            && f.path.ends_with("/events.jsonl")
            && f.result == "EACCES"),
        "the forged write to the audit log is recorded"
    );
    // rm works relative to directory descriptors: the refused unlinks name the pins.
    assert!(
        file_events(&s)
            .iter()
            .any(|(o, f)| *o == "unlink" && f.path == "warden_connect4" && f.result == "EACCES"),
        "the attempt on the pinned programs is recorded: {:#?}",
        file_events(&s)
    );
}

#[test]
fn a_forbidden_command_is_refused_through_every_door() {
    let ws = tempfile::tempdir().unwrap();
    let w = ws.path().display().to_string();
    // In a file, not `sh -c`: the gate would otherwise refuse the whole script up front, and
    // each door is to be tried on its own.
    let doors = format!(
        "cd {w}
         /usr/bin/touch m1
         ln -s /usr/bin/touch t; ./t m2
         cp /usr/bin/touch innocent; ./innocent m3
         sh -c 'touch m4'
         env touch m5
         printf '#!/bin/sh\\ntouch m6\\n' > s.sh; chmod +x s.sh; ./s.sh
         /lib64/ld-linux-x86-64.so.2 /usr/bin/touch m7
         {escape} memfd-exec /usr/bin/touch m8
         ./s9.sh
         ./s10.sh
         ./s11.sh m11
         ./s12.sh
         ./s13.sh
         echo done",
        escape = bin("escape")
    );
    // Interpreter lines: the kernel runs what they name, with their argument, nested.
    let scripts = [
        ("s9.sh", "#!/usr/bin/touch m9\n".to_string()),
        ("s10-inner", "#!/usr/bin/touch m10\n".to_string()),
        ("s10.sh", format!("#!{w}/s10-inner\n")),
        ("s11.sh", "#!/usr/bin/env touch\n".to_string()),
        ("s12.sh", "#!/usr/bin/env -S touch m12\n".to_string()),
        ("s13.sh", "#! ./t m13\n".to_string()),
    ];
    for (name, text) in &scripts {
        let p = ws.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let script = ws.path().join("doors.sh");
    std::fs::write(&script, doors).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = run_session(
        &["--workspace", &w, "--exec-rule", "forbidden=touch"],
        &["sh", script.to_str().unwrap()],
    );
    assert!(s.stdout.contains("done"), "{}", s.stderr);
    for m in 1..=13 {
        assert!(
            !ws.path().join(format!("m{m}")).exists(),
            "door {m} let touch run:\n{}",
            s.stderr
        );
    }
    let refused: Vec<&ExecRequest> = exec_requests(&s)
        .into_iter()
        .filter(|e| e.verdict == Verdict::Deny)
        .collect();
    assert!(
        refused
            .iter()
            .all(|e| e.rule.as_deref() == Some("exec.rules=touch")),
        "{refused:#?}"
    );
    let shows = |what: &str, f: &dyn Fn(&ExecRequest) -> bool| {
        assert!(
            refused.iter().any(|e| f(e)),
            "no refusal for {what}: {refused:#?}"
        );
    };
    shows("the absolute path", &|e| {
        e.filename == "/usr/bin/touch" && e.argv[1] == "m1"
    });
    shows("the symlink", &|e| {
        e.filename == "./t" && e.program == "touch"
    });
    shows("the renamed copy", &|e| {
        e.filename == "./innocent" && e.program == "touch"
    });
    shows("sh -c", &|e| {
        e.program == "sh" && e.matched.first().map(String::as_str) == Some("touch")
    });
    shows("env", &|e| e.program == "env");
    shows("the script", &|e| {
        e.argv.last().map(String::as_str) == Some("m6")
    });
    shows("the dynamic loader", &|e| e.program.starts_with("ld-linux"));
    shows("the memfd", &|e| {
        e.syscall == "execveat" && e.program == "touch"
    });
    let chain = |e: &ExecRequest| -> Vec<(String, String)> {
        e.interpreters
            .iter()
            .map(|i| (i.program.clone(), i.via.clone()))
            .collect()
    };
    let touch = ("touch".to_string(), "#!".to_string());
    shows("the interpreter line", &|e| {
        e.filename == "./s9.sh" && chain(e) == [touch.clone()]
    });
    shows("the nested interpreter", &|e| {
        e.filename == "./s10.sh"
            && chain(e) == [("s10-inner".to_string(), "#!".to_string()), touch.clone()]
    });
    shows("env on the interpreter line", &|e| {
        e.filename == "./s11.sh" && e.matched.first().map(String::as_str) == Some("touch")
    });
    shows("env -S on the interpreter line", &|e| {
        e.filename == "./s12.sh" && e.matched == ["touch", "m12", "./s12.sh"]
    });
    shows("a relative interpreter through a symlink", &|e| {
        e.filename == "./s13.sh" && chain(e) == [touch.clone()]
    });
}

/// A binfmt_misc handler registered for the test, removed (and binfmt_misc unmounted, if the
/// test mounted it) when dropped.
struct MiscHandler {
    entry: std::path::PathBuf,
    mounted: bool,
}

impl MiscHandler {
    const DIR: &str = "/proc/sys/fs/binfmt_misc";

    fn register(name: &str, extension: &str, interpreter: &str) -> Result<Self, String> {
        let dir = Path::new(Self::DIR);
        let mounted = !dir.join("register").exists();
        if mounted {
            let out = std::process::Command::new("mount")
                .args(["-t", "binfmt_misc", "binfmt_misc", Self::DIR])
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
            }
        }
        let handler = Self {
            entry: dir.join(name),
            mounted,
        };
        std::fs::write(
            dir.join("register"),
            format!(":{name}:E::{extension}::{interpreter}:"),
        )
        .map_err(|e| format!("registering: {e}"))?;
        Ok(handler)
    }
}

impl Drop for MiscHandler {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.entry, "-1");
        if self.mounted {
            let _ = std::process::Command::new("umount").arg(Self::DIR).status();
        }
    }
}

#[test]
fn a_binfmt_misc_handler_is_judged_as_the_program_that_runs() {
    let tag = std::process::id();
    let (name, ext) = (format!("warden-test-{tag}"), format!("wtest{tag}"));
    let _handler = match MiscHandler::register(&name, &ext, "/usr/bin/touch") {
        Ok(h) => h,
        Err(why) => {
            eprintln!("skipped: this kernel takes no binfmt_misc handler: {why}");
            return;
        }
    };
    let ws = tempfile::tempdir().unwrap();
    let job = ws.path().join(format!("job.{ext}"));
    // A shell script by its content: only the handler makes touch run it.
    std::fs::write(&job, "#!/bin/sh\necho harmless\n").unwrap();
    std::fs::set_permissions(&job, std::fs::Permissions::from_mode(0o755)).unwrap();
    let w = ws.path().display().to_string();
    let s = run_session(
        &["--workspace", &w, "--exec-rule", "forbidden=touch"],
        &[
            "sh",
            "-c",
            &format!("cd {w} && ./job.{ext} m1; echo status=$?"),
        ],
    );
    assert_ne!(status_of(&s, "status"), "0", "{}", s.stderr);
    assert!(!ws.path().join("m1").exists(), "the handler ran touch");
    let e = exec_requests(&s)
        .into_iter()
        .find(|e| e.filename == format!("./job.{ext}"))
        .expect("the exec of the job is recorded");
    assert_eq!(e.verdict, Verdict::Deny);
    assert_eq!(e.rule.as_deref(), Some("exec.rules=touch"));
    let via: Vec<(&str, &str)> = e
        .interpreters
        .iter()
        .map(|i| (i.program.as_str(), i.via.as_str()))
        .collect();
    assert_eq!(via, [("touch", format!("binfmt_misc:{name}").as_str())]);
}

#[test]
fn swapping_argv_after_the_check_never_runs_the_forbidden_command() {
    let s = run_session(
        &["--exec-rule", "forbidden=echo FORBIDN"],
        &[bin("exec-race"), "300".into()],
    );
    let line = s.stdout.trim();
    let count = |k: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(count("ran_forbidden"), 0, "the race was won: {line}");
    let killed = count("killed");
    assert!(
        killed > 0,
        "300 attempts should hit the window at least once: {line}"
    );
    let mismatches = s
        .execs()
        .iter()
        .filter(|e| e.killed_for_token == Some(TokenProblem::Mismatch))
        .count() as u64;
    assert_eq!(mismatches, killed, "every kill is in the log");
}

#[test]
fn swapping_the_interpreter_line_after_the_check_never_runs_the_forbidden_program() {
    let ws = tempfile::tempdir().unwrap();
    // Same argument, same tail: only the interpreter differs, so the token's binding of the
    // file that runs is what must catch the swap.
    for (name, text) in [
        ("allowed", "#!/bin/echo ran\n"),
        ("forbidden", "#!/usr/bin/touch ran\n"),
    ] {
        let p = ws.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::copy(ws.path().join("allowed"), ws.path().join("run")).unwrap();
    let w = ws.path().display().to_string();
    let s = run_session(
        &["--workspace", &w, "--exec-rule", "forbidden=touch"],
        &[bin("exec-race"), "300".into(), "interp".into(), w.clone()],
    );
    let line = s.stdout.trim();
    let count = |k: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing: {line}\n{}", s.stderr))
            .parse()
            .unwrap()
    };
    assert_eq!(count("ran_forbidden"), 0, "the race was won: {line}");
    assert!(count("ran_allowed") > 0, "{line}");
    let mismatches = s
        .execs()
        .iter()
        .filter(|e| e.killed_for_token == Some(TokenProblem::Mismatch))
        .count() as u64;
    assert_eq!(
        mismatches,
        count("killed"),
        "every kill is in the log: {line}"
    );
    eprintln!("interpreter swap: {line}");
}

#[test]
fn the_supervisor_and_the_kernel_are_out_of_reach() {
    let e = bin("escape");
    let script = format!(
        "for a in 'kill '$PPID 'ptrace '$PPID bpf unshare-user io-uring raw-socket packet-socket; do \
           echo \"$a=$({e} $a)\"; done"
    );
    let s = run_session(&[], &["sh", "-c", &script]);
    assert!(s.status.success(), "{}", s.stderr);
    for attempt in [
        "kill",
        "ptrace",
        "bpf",
        "unshare-user",
        "io-uring",
        "raw-socket",
        "packet-socket",
    ] {
        let line = s
            .stdout
            .lines()
            .find(|l| l.starts_with(attempt))
            .unwrap_or_else(|| panic!("{attempt} not reported: {}", s.stdout));
        assert!(line.ends_with("=err EPERM"), "{line}");
    }
    let denied: Vec<&str> = denied_syscalls(&s)
        .iter()
        .map(|d| d.syscall.as_str())
        .collect();
    for call in [
        "kill",
        "ptrace",
        "bpf",
        "unshare",
        "io_uring_setup",
        "socket",
    ] {
        assert!(
            denied.contains(&call),
            "no syscall.denied for {call}: {denied:?}"
        );
    }
    assert_eq!(denied.iter().filter(|c| **c == "socket").count(), 2);
    assert_eq!(
        s.end().reason,
        warden::events::EndReason::Exited,
        "the supervisor survived"
    );
}

#[test]
fn signals_reach_only_the_session_whatever_the_door() {
    use std::os::unix::process::CommandExt as _;
    let e = bin("escape");
    // The session's own processes can be signalled; then each other door to the supervisor
    // ($PPID) with SIGTERM, which would end the session had it arrived. The shell ignores
    // SIGTERM from there on (kill(0) reaches it too).
    let script = format!(
        "sleep 30 & kill $!; wait $!; echo child=$?; trap '' TERM; \
         for a in kill-wide kill-threads sigqueue pidfd-proc sigio; do echo \"$a=$({e} $a $PPID)\"; done; \
         echo \"packet-socket-wide=$({e} packet-socket-wide)\"; \
         echo \"kill-group=$({e} kill-group)\""
    );
    let state = private_dir();
    // The command shares Warden's process group: Warden leads a group of its own here, so
    // that a kill(0) that got through would reach Warden, not this test.
    let out = warden_command(state.path(), &[], &["sh", "-c", &script])
        .process_group(0)
        .output()
        .unwrap();
    let s = finish(state, out);
    assert!(s.status.success(), "{}", s.stderr);
    let result = |attempt: &str| {
        s.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{attempt}=")))
            .unwrap_or_else(|| panic!("{attempt} not reported: {}", s.stdout))
            .to_string()
    };
    assert_eq!(
        result("child"),
        "143",
        "SIGTERM ended the session's own child"
    );
    for attempt in [
        "kill-wide",
        "kill-threads",
        "sigqueue",
        "pidfd-proc",
        "packet-socket-wide",
    ] {
        assert_eq!(result(attempt), "err EPERM", "{attempt}: {}", s.stdout);
    }
    let scoped = !s
        .start()
        .missing_layers
        .iter()
        .any(|l| l == "landlock.scope_signal");
    if !scoped {
        // Without Landlock scoping the supervisor decides: the group holds Warden, and
        // F_SETOWN would make it the receiver of SIGIO (with scoping, the kernel drops that
        // SIGIO instead: the session's end below shows the supervisor never got it).
        assert_eq!(result("kill-group"), "err EPERM", "{}", s.stdout);
        assert_eq!(result("sigio"), "err EPERM", "{}", s.stdout);
    }
    let denied: Vec<&str> = denied_syscalls(&s)
        .iter()
        .map(|d| d.syscall.as_str())
        .collect();
    for call in ["kill", "rt_sigqueueinfo", "socket"] {
        assert!(
            denied.contains(&call),
            "no syscall.denied for {call}: {denied:?}"
        );
    }
    assert_eq!(
        s.end().reason,
        warden::events::EndReason::Exited,
        "no SIGTERM reached the supervisor"
    );
}

/// Each socket the allowlist leaves out: (label, syscall, family, type, protocol, the family
/// and protocol the record names).
const REFUSED_SOCKETS: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("ping4", "socket", "2", "2", "1", "AF_INET IPPROTO_ICMP"),
    (
        "ping6",
        "socket",
        "10",
        "2",
        "58",
        "AF_INET6 IPPROTO_ICMPV6",
    ),
    ("raw-ip", "socket", "2", "3", "6", "AF_INET IPPROTO_TCP"),
    (
        "sctp-stream",
        "socket",
        "2",
        "1",
        "132",
        "AF_INET IPPROTO_SCTP",
    ),
    (
        "sctp-seqpacket",
        "socket",
        "10",
        "5",
        "132",
        "AF_INET6 IPPROTO_SCTP",
    ),
    ("mptcp", "socket", "2", "1", "262", "AF_INET IPPROTO_MPTCP"),
    (
        "udplite",
        "socket",
        "10",
        "2",
        "136",
        "AF_INET6 IPPROTO_UDPLITE",
    ),
    ("vsock", "socket", "40", "1", "0", "AF_VSOCK 0x0"),
    ("tipc", "socket", "30", "4", "0", "AF_TIPC 0x0"),
    ("tipc-pair", "socketpair", "30", "5", "0", "AF_TIPC 0x0"),
    ("rds", "socket", "21", "5", "0", "AF_RDS 0x0"),
    ("bluetooth", "socket", "31", "3", "1", "AF_BLUETOOTH 0x1"),
    ("can", "socket", "29", "3", "1", "AF_CAN 0x1"),
    ("xdp", "socket", "44", "3", "0", "AF_XDP 0x0"),
    ("packet-dgram", "socket", "17", "2", "0", "AF_PACKET 0x0"),
    ("kcm", "socket", "41", "2", "0", "AF_KCM 0x0"),
    (
        "netlink-audit",
        "socket",
        "16",
        "3",
        "9",
        "AF_NETLINK NETLINK_AUDIT",
    ),
    (
        "netlink-netfilter",
        "socket",
        "16",
        "3",
        "12",
        "AF_NETLINK NETLINK_NETFILTER",
    ),
    (
        "unix-wide",
        "socket",
        "0x100000001",
        "1",
        "0",
        "0x100000001 0x0",
    ),
    (
        "tcp-wide-protocol",
        "socket",
        "2",
        "1",
        "0x100000006",
        "AF_INET 0x100000006",
    ),
    ("unknown-family", "socket", "46", "1", "0", "0x2e 0x0"),
];

#[test]
fn only_tcp_udp_unix_and_libcs_netlink_sockets_can_be_made() {
    let e = bin("escape");
    let mut script = String::new();
    for (label, call, family, kind, protocol, _) in REFUSED_SOCKETS {
        script.push_str(&format!(
            "echo \"{label}=$({e} {call} {family} {kind} {protocol})\"; "
        ));
    }
    // What programs need still works: TCP, UDP, UNIX, libc's netlink route query.
    for (label, family, kind, protocol) in [
        ("tcp", 2, 1, 6),
        ("udp6", 10, 2, 0),
        ("unix", 1, 5, 0),
        ("netlink-route", 16, 3, 0),
    ] {
        script.push_str(&format!(
            "echo \"{label}=$({e} socket {family} {kind} {protocol})\"; "
        ));
    }
    script.push_str(&format!("echo \"unix-pair=$({e} socketpair 1 1 0)\""));
    let s = run_session(&[], &["sh", "-c", &script]);
    assert!(s.status.success(), "{}", s.stderr);
    for label in ["tcp", "udp6", "unix", "netlink-route", "unix-pair"] {
        assert_eq!(status_of(&s, label), "ok", "{label}: {}", s.stdout);
    }
    let denied = denied_syscalls(&s);
    for (label, call, _, _, _, named) in REFUSED_SOCKETS {
        assert_eq!(status_of(&s, label), "err EPERM", "{label}: {}", s.stdout);
        let (family, protocol) = named.split_once(' ').unwrap();
        assert!(
            denied.iter().any(|d| d.syscall == *call
                && d.socket
                    .as_ref()
                    .is_some_and(|c| c.family == family && c.protocol == protocol)),
            "no syscall.denied naming {named} for {label}: {denied:#?}"
        );
    }
    assert_eq!(denied.len(), REFUSED_SOCKETS.len(), "{denied:#?}");
}

/// The first block device node under /dev, if the machine has one (a VM guest may not).
fn a_block_device() -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    std::fs::read_dir("/dev")
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.file_type().is_ok_and(|t| t.is_block_device()))
        .map(|e| e.path().display().to_string())
}

#[test]
fn an_agent_run_as_root_reaches_neither_the_disk_nor_files_by_handle_nor_device_nodes() {
    let tag = std::process::id();
    std::fs::create_dir_all("/root/.ssh").unwrap();
    let secret = format!("/root/.ssh/warden-handle-{tag}");
    std::fs::write(&secret, "SECRET\n").unwrap();
    let ws = tempfile::tempdir().unwrap();
    let w = ws.path().display().to_string();
    let block = a_block_device();
    let e = bin("escape");
    let script = format!(
        "grep -E '^Cap(Eff|Bnd)' /proc/self/status | tr -d '\\t' | sed 's/:/=/'
         head -c 16 {dev} >/dev/null 2>&1; echo DISK=$?
         head -c 1 /dev/kmsg >/dev/null 2>&1; echo KMSG=$?
         echo HANDLE=$({e} open-by-handle {secret})
         echo MKNOD=$({e} mknod-block {w}/disk)
         head -c 4 /dev/urandom | wc -c | sed 's/^/URANDOM=/'
         touch {w}/mine && chown 65534 {w}/mine; echo CHOWN=$?",
        dev = block.as_deref().unwrap_or("/dev/null-missing"),
    );
    let s = run_session(&["--workspace", &w], &["sh", "-c", &script]);
    let _ = std::fs::remove_file(&secret);
    assert!(s.status.success(), "{}", s.stderr);
    // CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID, CAP_SETUID,
    // CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE, and no more, now and after any exec.
    assert_eq!(status_of(&s, "CapEff"), "00000000200004fb");
    assert_eq!(status_of(&s, "CapBnd"), "00000000200004fb");
    match &block {
        Some(dev) => {
            assert_ne!(status_of(&s, "DISK"), "0", "read {dev}");
            assert_refused(&s, "open", dev);
        }
        None => eprintln!("no block device on this machine: the raw disk read is not tried"),
    }
    assert_ne!(status_of(&s, "KMSG"), "0");
    assert_refused(&s, "open", "/dev/kmsg");
    assert_eq!(status_of(&s, "MKNOD"), "err EPERM");
    let denied: Vec<String> = denied_syscalls(&s)
        .iter()
        .map(|d| d.syscall.clone())
        .collect();
    // Some file systems give no handles (the VM guests' root): then there is nothing to open.
    let handle = status_of(&s, "HANDLE");
    if handle.starts_with("name_to_handle_at") {
        eprintln!("this file system gives no file handles ({handle}): open_by_handle_at not tried");
    } else {
        assert_eq!(handle, "err EPERM");
        assert!(
            denied.contains(&"open_by_handle_at".to_string()),
            "{denied:?}"
        );
    }
    assert!(
        denied.contains(&"mknod".to_string()) || denied.contains(&"mknodat".to_string()),
        "{denied:?}"
    );
    assert!(!ws.path().join("disk").exists());
    // What ordinary work as root needs still works.
    assert_eq!(status_of(&s, "URANDOM"), "4");
    assert_eq!(status_of(&s, "CHOWN"), "0");
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit_and_the_session_goes_on() {
    let s = run_session(
        &["--max-pids", "64"],
        &[
            "bash",
            "-c",
            // The bomb is dash's (a failed fork ends its process, so it burns out within
            // seconds; tens under software emulation in the VM matrix). The waiting shell is
            // bash, which survives a failed fork of its own and tries again until one works.
            "sh -c 'bomb() { bomb | bomb & }; bomb' 2>/dev/null; i=0; \
             until sleep 1 2>/dev/null; do [ $i -ge 60 ] && exit 3; i=$((i+1)); done; \
             echo survived",
        ],
    );
    assert!(s.status.success(), "{}", s.stderr);
    assert_eq!(s.stdout.trim(), "survived");
    let limit = s
        .records
        .iter()
        .find_map(|r| match &r.event {
            Event::LimitReached(l) => Some(l),
            _ => None,
        })
        .expect("a limit.reached record");
    assert_eq!(
        (limit.resource.as_str(), limit.limit.as_str()),
        ("pids", "64")
    );
    assert!(limit.hits > 0);
}
