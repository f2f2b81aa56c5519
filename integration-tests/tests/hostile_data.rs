//! Hostile argv and file names are escaped, bounded and marked, and the log stays one JSON
//! object per line.
use std::{ffi::OsString, os::unix::ffi::OsStringExt as _};

use warden::events::escape::unescape;
use warden_common::ARGV_MAX;
use warden_integration_tests::*;

#[test]
fn argv_with_newline_invalid_utf8_and_huge_arguments() {
    // Linux caps one argument at 128 KiB (MAX_ARG_STRLEN), so 220 KB of argv is two large
    // arguments rather than one 200 KB argument, which execve would refuse with E2BIG.
    let big1 = vec![b'A'; 120 * 1024];
    let big2 = vec![b'B'; 100 * 1024];
    let args: Vec<OsString> = vec![
        "/bin/echo".into(),
        "line1\nline2".into(),
        OsString::from_vec(b"\xff\xfe-not-utf8".to_vec()),
        "back\\slash".into(),
        OsString::from_vec(big1.clone()),
        OsString::from_vec(big2),
    ];
    let s = run_session(&["--events"], &args);
    assert!(s.status.success(), "{}", s.stderr);
    let e = s.exec_of("/bin/echo");
    assert_eq!(e.argv[1], "line1\nline2");
    assert_eq!(e.argv[2], "\\xff\\xfe-not-utf8");
    assert_eq!(unescape(&e.argv[2]), b"\xff\xfe-not-utf8");
    assert_eq!(e.argv[3], "back\\\\slash");
    assert!(e.argv_truncated);
    let total: u64 = args.iter().map(|a| a.len() as u64 + 1).sum();
    assert_eq!(e.argv_bytes, total);
    let kept: usize = e.argv.iter().map(|a| unescape(a).len() + 1).sum();
    assert!(
        kept <= ARGV_MAX + 1,
        "at most ARGV_MAX bytes kept, got {kept}"
    );
    assert!(
        big1.starts_with(&unescape(e.argv.last().unwrap())),
        "the cut argument is a prefix"
    );
    // session.start's copy of the command is bounded the same way.
    assert!(s.start().command_truncated);
    // The raw log: one line per record, each small.
    let raw = std::fs::read_to_string(&s.log).unwrap();
    assert_eq!(raw.lines().count(), s.records.len());
    assert!(
        raw.lines().all(|l| l.len() < 3 * ARGV_MAX),
        "a record stayed bounded"
    );
    // The live view shows the newline escaped, on one line.
    let live = s
        .stderr
        .lines()
        .find(|l| l.contains(" exec ") && l.contains("/bin/echo"))
        .unwrap();
    assert!(live.contains("'line1\\nline2'"), "{live}");
    assert!(live.contains("argv truncated"), "{live}");
}

#[test]
fn file_names_with_newlines_and_invalid_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let mut name = dir.path().as_os_str().to_owned().into_vec();
    name.extend_from_slice(b"/tr\nue-\xff");
    let path = std::path::PathBuf::from(OsString::from_vec(name.clone()));
    std::fs::copy("/bin/true", &path).unwrap();
    let s = run_session(&[], &[path.as_os_str()]);
    assert!(s.status.success(), "{}", s.stderr);
    let e = s
        .execs()
        .into_iter()
        .find(|e| e.filename.contains("ue-"))
        .expect("exec recorded");
    assert_eq!(unescape(&e.filename), name);
    assert!(e.filename.ends_with("/tr\nue-\\xff"), "{:?}", e.filename);
    let out = std::process::Command::new(warden_bin())
        .args(["events", "--view", "list"])
        .arg(&s.log)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().count(),
        s.records.len(),
        "one line per record:\n{text}"
    );
    assert!(text.contains("tr\\nue-\\xff"), "{text}");
}
