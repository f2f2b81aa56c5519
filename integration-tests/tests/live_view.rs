//! What `warden run --events` shows a person while the session runs: the actions, with PATH
//! lookups and file activity folded (`actions`, the default); every record with `=all`.
use warden::action_view::FILES_LABEL;
use warden_integration_tests::*;

/// `env` finds `sleep` on PATH after two misses; `cat` opens its libraries and two files; the
/// shell writes one file into the workspace, and one outside it, which Landlock refuses.
fn session(events: &str) -> (Session, tempfile::TempDir) {
    let d = tempfile::tempdir().unwrap();
    let ws = std::fs::canonicalize(d.path()).unwrap();
    let w = ws.display().to_string();
    let script = format!(
        "export PATH=/nonexistent/a:/nonexistent/b:/usr/bin:/bin
         env sleep 0.01
         cat /etc/hostname /etc/passwd > {w}/out.txt
         echo x > /etc/warden-live-view-test
         true"
    );
    let s = run_session(&[events, "--workspace", &w], &["sh", "-c", &script]);
    assert!(s.status.success(), "{}", s.stderr);
    (s, d)
}

fn lines_of<'a>(s: &'a Session, kind: &str) -> Vec<&'a str> {
    let column = format!(" {kind:<13} ");
    s.stderr.lines().filter(|l| l.contains(&column)).collect()
}

#[test]
fn actions_show_the_exec_once_and_file_activity_per_process() {
    let (s, ws) = session("--events");
    let sleep: Vec<&str> = lines_of(&s, "exec")
        .into_iter()
        .filter(|l| l.contains("/usr/bin/sleep"))
        .collect();
    assert_eq!(sleep.len(), 1, "{}", s.stderr);
    assert!(
        sleep[0].contains("/usr/bin/sleep  sleep 0.01 (found on PATH after 2 misses)"),
        "{}",
        sleep[0]
    );
    assert!(lines_of(&s, "exec.request").is_empty(), "{}", s.stderr);
    assert!(lines_of(&s, "fork").is_empty(), "{}", s.stderr);
    // The only file call on a line of its own is the denied one.
    let opens = lines_of(&s, "file.open");
    assert_eq!(opens.len(), 1, "{}", s.stderr);
    assert!(
        opens[0].contains("/etc/warden-live-view-test O_WRONLY|O_CREAT|O_TRUNC EACCES"),
        "{}",
        opens[0]
    );
    assert!(!s.stderr.contains("libc.so"), "{}", s.stderr);
    let files = lines_of(&s, FILES_LABEL);
    let cat = files
        .iter()
        .find(|l| l.contains(" cat: "))
        .expect("cat's files line");
    assert!(cat.contains("shared libraries/locales)"), "{cat}");
    let shell = files
        .iter()
        .find(|l| l.contains(", sh: "))
        .unwrap_or_else(|| panic!("the shell's files line:\n{}", s.stderr));
    assert!(
        shell.contains("1 write (1 under the workspace), 1 denied"),
        "{shell}"
    );
    // The view, not the log: every call is recorded.
    assert!(s.count("exec.request") >= 4, "three tries of sleep, and sh");
    assert!(s.count("file.open") > 10);
    assert!(
        std::fs::read_to_string(ws.path().join("out.txt"))
            .unwrap()
            .lines()
            .count()
            > 1
    );
    assert!(lines_of(&s, "session.end").len() == 1, "{}", s.stderr);
}

#[test]
fn all_shows_every_record() {
    let (s, _ws) = session("--events=all");
    for kind in ["exec.request", "exec", "fork", "exit", "file.open"] {
        assert_eq!(
            lines_of(&s, kind).len(),
            s.count(kind),
            "{kind}: {}",
            s.stderr
        );
    }
    assert!(
        lines_of(&s, "exec.request")
            .iter()
            .any(|l| l.contains("/nonexistent/a/sleep")),
        "{}",
        s.stderr
    );
    assert!(lines_of(&s, FILES_LABEL).is_empty(), "{}", s.stderr);
}
