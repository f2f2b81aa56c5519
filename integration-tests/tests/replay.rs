//! `warden replay` on real sessions: the tree it rebuilds is the live one, filters and JSON,
//! resending to a collector, and `--verify` naming where a log was changed, cut or reordered.
use std::process::{Command, Output};

use warden::process_tree::ProcessTree;
use warden_integration_tests::{collector::Collector, *};

fn replay(args: &[&str]) -> Output {
    Command::new(warden_bin())
        .arg("replay")
        .args(args)
        .output()
        .expect("running warden replay")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn replay_rebuilds_the_live_tree_and_filters() {
    let s = run_session(
        &[],
        &[
            "sh",
            "-c",
            "echo sh=$$; /bin/true; (sleep 0.2 & echo bg=$!; wait); cat /etc/hostname >/dev/null; exit 0",
        ],
    );
    assert!(s.status.success(), "{}", s.stderr);
    let sh = reported_pid(&s.stdout, "sh");
    let bg = reported_pid(&s.stdout, "bg");
    let dir = s.log.parent().unwrap().display().to_string();

    let tree = stdout(&replay(&[&dir, "--view", "tree"]));
    assert_eq!(tree, ProcessTree::build(&s.records).render());
    // The live tree: sh at the top, the background sleep below a subshell below sh.
    let rebuilt = ProcessTree::build(&s.records);
    let bg_node = rebuilt.nodes.iter().position(|n| n.pid == bg).unwrap();
    assert_eq!(rebuilt.ancestors(bg_node).last(), Some(&sh));
    // The launcher execs the command in the same process.
    assert!(tree.starts_with(&format!("[{sh}] ")), "{tree}");
    assert!(tree.lines().next().unwrap().contains("=> sh -c"), "{tree}");
    assert!(tree.contains(&format!("[{bg}] sleep 0.2")), "{tree}");

    // Only sh's own subtree, only execs.
    let sh_s = sh.to_string();
    let timeline = stdout(&replay(&[
        &dir,
        "--pid",
        &sh_s,
        "--subtree",
        "--kind",
        "exec",
    ]));
    let lines: Vec<&str> = timeline.lines().collect();
    // `exec` is the family: exec and exec.request.
    assert!(lines.iter().all(|l| l.contains(" exec")), "{timeline}");
    assert!(
        timeline.contains("/bin/true") && timeline.contains("sleep 0.2"),
        "{timeline}"
    );
    assert_eq!(
        lines.len(),
        s.count("exec") + s.count("exec.request"),
        "every exec is below sh: {timeline}"
    );

    // What cat opened.
    let cat = s.exec_of("/usr/bin/cat").pid.to_string();
    let activity = stdout(&replay(&[&dir, "--view", "activity", "--pid", &cat]));
    assert!(activity.contains("open /etc/hostname"), "{activity}");
    assert!(activity.contains("network: none"), "{activity}");

    // JSON round trip, and a time window.
    let json = stdout(&replay(&[&dir, "--json"]));
    let back: Vec<Record> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back, s.records);
    let first = stdout(&replay(&[&dir, "--json", "--until", "+0s"]));
    assert!(first.lines().count() >= 1 && first.lines().count() < s.records.len());
    let bad = replay(&[&dir, "--since", "yesterday"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
}

#[test]
fn replay_sends_a_recorded_session_to_a_collector() {
    let s = run_session(&[], &["sh", "-c", "/bin/true"]);
    let collector = Collector::start("127.0.7.7", 4770);
    for (protocol, url) in [
        ("grpc", collector.grpc_url()),
        ("http", collector.http_url()),
    ] {
        let out = replay(&[
            s.log.to_str().unwrap(),
            "--otlp",
            &url,
            "--protocol",
            protocol,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let received = collector.received();
    let id = &s.records[0].session;
    let mine = received
        .iter()
        .filter(|r| r.attr("warden.session.id") == Some(id.as_str()))
        .count();
    assert_eq!(mine, 2 * s.records.len(), "every record, once per protocol");
    assert_eq!(collector.session(id).len(), s.records.len());
}

/// A copy of the session's log and head file, changed by `damage`, in a directory of its own.
fn damaged(s: &Session, damage: impl FnOnce(&mut Vec<String>)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&s.log).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    damage(&mut lines);
    let mut out = lines.join("\n");
    if !out.ends_with('\u{0}') {
        out.push('\n');
    }
    std::fs::write(
        dir.path().join("events.jsonl"),
        out.trim_end_matches('\u{0}'),
    )
    .unwrap();
    std::fs::copy(
        s.log.with_file_name("events.head"),
        dir.path().join("events.head"),
    )
    .unwrap();
    dir
}

fn verify(dir: &tempfile::TempDir) -> (bool, String) {
    let out = replay(&[dir.path().to_str().unwrap(), "--verify"]);
    (out.status.success(), stdout(&out))
}

#[test]
fn verify_names_where_a_log_was_damaged() {
    let s = run_session(&[], &["sh", "-c", "/bin/true; /bin/true; ls / >/dev/null"]);
    assert!(s.records.len() > 12);

    let (ok, text) = verify(&damaged(&s, |_| {}));
    assert!(ok && text.contains("intact"), "{text}");

    // A changed field in the 6th line (seq 5).
    let (ok, text) = verify(&damaged(&s, |l| {
        l[5] = l[5].replacen("\"boot_ns\":", "\"boot_ns\":1", 1)
    }));
    assert!(!ok);
    assert!(
        text.contains("line 6: changed: record seq 5 was changed"),
        "{text}"
    );

    // A removed record.
    let (ok, text) = verify(&damaged(&s, |l| {
        l.remove(7);
    }));
    assert!(!ok);
    assert!(
        text.contains("line 8: removed: 1 record removed before seq 8: seq 7"),
        "{text}"
    );

    // Two records swapped.
    let (ok, text) = verify(&damaged(&s, |l| l.swap(3, 4)));
    assert!(!ok);
    assert!(text.contains("line 4: reordered"), "{text}");
    assert!(!text.contains("removed"), "{text}");

    // The last three records cut off: the chain is intact, the head file is not fooled.
    let n = s.records.len() as u64;
    let (ok, text) = verify(&damaged(&s, |l| l.truncate(l.len() - 3)));
    assert!(!ok);
    assert!(
        text.contains(&format!(
            "truncated: the log ends at seq {} but seq {} was on disk",
            n - 4,
            n - 1
        )),
        "{text}"
    );

    // Cut in the middle of the last line.
    let (ok, text) = verify(&damaged(&s, |l| {
        let last = l.len() - 1;
        l[last].truncate(20);
        l[last].push('\u{0}');
    }));
    assert!(!ok);
    assert!(text.contains(&format!("line {n}: partial_line")), "{text}");
    assert!(text.contains("truncated"), "{text}");
}
