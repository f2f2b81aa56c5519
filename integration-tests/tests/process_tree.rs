//! The session sees its whole process tree, and nothing else.
use std::{process::Command, time::Duration};

use warden::process_tree::ProcessTree;
use warden_integration_tests::*;

#[test]
fn shell_session_rebuilds_the_real_tree() {
    // dash's `true` is a builtin, so /bin/true is spelled out to get an exec; the final sleep
    // keeps the session open until the background sleep has run (a session ends, and kills
    // what is left, when its command exits).
    let s = run_session(
        &[],
        &[
            "sh",
            "-c",
            "echo sh=$$; /bin/true; ls / >/dev/null; (sleep 0.2 & echo bg=$!); wait; sleep 0.4; exit 0",
        ],
    );
    assert!(s.status.success(), "{}", s.stderr);
    let sh = reported_pid(&s.stdout, "sh");
    let bg = reported_pid(&s.stdout, "bg");

    let sh_exec = s.exec_of("/usr/bin/sh");
    assert_eq!(sh_exec.pid, sh);
    assert_eq!(sh_exec.argv[0], "sh");
    let t = s.exec_of("/bin/true");
    assert_eq!(t.ppid, sh);
    let ls = s.exec_of("/usr/bin/ls");
    assert_eq!(
        (ls.ppid, ls.argv.as_slice()),
        (sh, &["ls".to_string(), "/".to_string()][..])
    );
    let sleeps: Vec<_> = s
        .execs()
        .into_iter()
        .filter(|e| e.filename == "/usr/bin/sleep")
        .collect();
    assert_eq!(sleeps.len(), 2, "{sleeps:?}");
    assert!(
        sleeps
            .iter()
            .any(|e| e.pid == bg && e.argv == ["sleep", "0.2"])
    );

    // Parent links, as rebuilt from fork/exec/exit records.
    let tree = ProcessTree::build(&s.records);
    assert_eq!(tree.roots.len(), 1, "{}", tree.render());
    assert_eq!(tree.nodes[tree.roots[0]].pid, sh);
    let bg_node = tree
        .nodes
        .iter()
        .position(|n| n.pid == bg)
        .expect("background sleep in the tree");
    let chain = tree.ancestors(bg_node);
    assert_eq!(chain.len(), 2, "sleep <- subshell <- sh: {chain:?}");
    assert_eq!(chain[1], sh);
    assert!(
        tree.nodes[tree.nodes[bg_node].parent.unwrap()]
            .execs
            .is_empty(),
        "the subshell forks, it does not exec"
    );
    // Every process of the session exited, and each exit was seen.
    assert!(
        tree.nodes.iter().all(|n| n.exit.is_some()),
        "{}",
        tree.render()
    );

    // `warden events` prints the same tree.
    let out = Command::new(warden_bin())
        .args(["events", "--view", "tree"])
        .arg(&s.log)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    // The first image is Warden's launcher, which confines itself and execs the command.
    assert!(text.starts_with(&format!("[{sh}] /")), "{text}");
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("/warden-launcher sh -c 'echo sh=$$;"),
        "{text}"
    );
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains(" => sh -c 'echo sh=$$;"),
        "{text}"
    );
    assert!(
        text.contains(&format!("├─ [{}] /bin/true  (exit 0)", t.pid)),
        "{text}"
    );
    assert!(
        text.contains(&format!("└─ [{bg}] sleep 0.2  (exit 0)")),
        "{text}"
    );
}

#[test]
fn a_process_outside_the_session_is_not_seen() {
    let marker = format!("warden-outside-{}", std::process::id());
    // Exec as fast as possible outside, for as long as the session runs.
    let mut outside = Command::new("sh")
        .args([
            "-c",
            &format!("while :; do /bin/echo {marker} >/dev/null; done"),
        ])
        .spawn()
        .unwrap();
    let s = run_session(
        &[],
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do /bin/echo inside; sleep 0.1; done",
        ],
    );
    outside.kill().unwrap();
    outside.wait().unwrap();
    assert!(s.status.success());
    assert_eq!(
        s.execs()
            .iter()
            .filter(|e| e.filename == "/bin/echo")
            .count(),
        5
    );
    for r in &s.records {
        let line = serde_json::to_string(r).unwrap();
        assert!(!line.contains(&marker), "outside process recorded: {line}");
        assert!(
            !line.contains(&format!("\"pid\":{}", outside.id())),
            "{line}"
        );
    }
    let cg = s.start().cgroup_id;
    assert!(s.execs().iter().all(|e| e.cgroup_id == cg));
}

#[test]
fn a_double_forked_daemon_stays_in_scope_and_is_killed_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("daemon.pid");
    // The subshell forks the daemon and exits; the daemon starts a new session (setsid), so
    // it has left both its parent and the terminal's process group. The parent waits until the
    // daemon runs sleep (a fixed pause raced it in slow VMs), at most 20 s.
    let script = format!(
        "(setsid sh -c 'echo $$ > {p}; exec /bin/sleep 300' &); \
         i=0; until [ -s {p} ] && [ \"$(cat /proc/$(cat {p})/comm 2>/dev/null)\" = sleep ]; \
         do i=$((i+1)); [ $i -lt 400 ] || exit 7; sleep 0.05; done; echo parent-done",
        p = pidfile.display()
    );
    let s = run_session(&[], &["sh", "-c", &script]);
    assert!(s.status.success(), "{}", s.stderr);
    let daemon: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let exec = s.exec_of("/bin/sleep");
    assert_eq!(exec.pid, daemon);
    assert_eq!(exec.argv, ["/bin/sleep", "300"]);
    let exit = s
        .exits()
        .into_iter()
        .find(|x| x.pid == daemon)
        .expect("daemon exit recorded");
    assert_eq!(exit.signal, Some(9), "killed by the session's end");
    assert!(s.end().killed >= 1);
    assert!(
        wait_for(Duration::from_secs(2), || !alive(daemon)),
        "daemon {daemon} survived"
    );
}
