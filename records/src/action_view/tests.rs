use super::*;

/// Records as Warden writes them: one JSON object per line, the event's fields beside
/// `seq`, `time` and `boot_ns` (the boot_ns is given: file records come after the exit of
/// their process, stamped with the time of their first call).
fn records(lines: &[(u64, &str)]) -> Vec<Record> {
    lines
        .iter()
        .enumerate()
        .map(|(seq, (boot_ns, event))| {
            let json = format!(
                r#"{{"session":"s","seq":{seq},"time":"2026-12-07T06:14:28.{:03}000000Z","boot_ns":{boot_ns},{event}}}"#,
                seq % 1000
            );
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
        })
        .collect()
}

/// What a person sees: the details of each line (after its time, seq and kind columns),
/// with the kind, pushing every record and ending with `finish`.
fn shown(recs: &[Record]) -> Vec<String> {
    let mut view = ActionView::new();
    let mut lines: Vec<String> = recs.iter().flat_map(|r| view.push(r)).collect();
    lines.extend(view.finish());
    lines.iter().map(|l| l[20..].to_string()).collect()
}

const START: &str = r#""kind":"session.start","schema":1,"warden_version":"0.1.0","command":["sh"],"user":"u","uid":1000,"gid":1000,"cgroup":"/c","cgroup_id":1,"supervisor_pid":1,"hostname":"h","kernel_programs":[],"workspace":"/home/u/proj","home":"/home/u""#;

fn request(pid: u32, filename: &str, argv: &str, verdict: &str) -> String {
    format!(
        r#""kind":"exec.request","pid":{pid},"syscall":"execve","filename":"{filename}","program":"x","argv":{argv},"verdict":"{verdict}","source":"policy","wait_us":50"#
    )
}

fn exec(pid: u32, filename: &str, argv: &str) -> String {
    format!(
        r#""kind":"exec","pid":{pid},"ppid":1,"uid":1000,"gid":1000,"cgroup_id":1,"filename":"{filename}","argv":{argv},"argv_bytes":9"#
    )
}

fn open(pid: u32, path: &str, flags: &str, result: &str, count: u64) -> String {
    format!(
        r#""kind":"file.open","pid":{pid},"path":"{path}","flags":"{flags}","result":"{result}","count":{count}"#
    )
}

fn exit(pid: u32) -> String {
    format!(r#""kind":"exit","pid":{pid},"ppid":1,"exit_code":0"#)
}

fn fork(pid: u32, ppid: u32) -> String {
    format!(r#""kind":"fork","pid":{pid},"ppid":{ppid}"#)
}

const SLEEP: &str = r#"["sleep","1"]"#;

#[test]
fn exec_requests_fold_into_what_ran() {
    let cases: &[(&str, Vec<String>, &[&str])] = &[
        (
            "a command found on PATH: the misses fold into the exec",
            vec![
                request(7, "/home/u/.cargo/bin/sleep", SLEEP, "allow"),
                request(7, "/usr/local/bin/sleep", SLEEP, "allow"),
                request(7, "/usr/bin/sleep", SLEEP, "allow"),
                exec(7, "/usr/bin/sleep", SLEEP),
            ],
            &[
                "exec          pid 7 ppid 1 uid 1000  /usr/bin/sleep  sleep 1 (found on PATH after 2 misses)",
            ],
        ),
        (
            "found at the first try: the exec alone",
            vec![
                request(7, "/usr/bin/sleep", SLEEP, "allow"),
                exec(7, "/usr/bin/sleep", SLEEP),
            ],
            &["exec          pid 7 ppid 1 uid 1000  /usr/bin/sleep  sleep 1"],
        ),
        (
            "not found anywhere: one line when the process gives up",
            vec![
                request(7, "/usr/local/bin/nosuch", r#"["nosuch"]"#, "allow"),
                request(7, "/usr/bin/nosuch", r#"["nosuch"]"#, "allow"),
                exit(7),
            ],
            &["exec.request  pid 7 ALLOW /usr/bin/nosuch  nosuch (did not run; 2 paths tried)"],
        ),
        (
            "another command ends the lookup before it",
            vec![
                request(7, "/usr/bin/python3", r#"["python3"]"#, "allow"),
                request(7, "/usr/bin/python", r#"["python"]"#, "allow"),
                exec(7, "/usr/bin/python", r#"["python"]"#),
            ],
            &[
                "exec.request  pid 7 ALLOW /usr/bin/python3  python3 (did not run)",
                "exec          pid 7 ppid 1 uid 1000  /usr/bin/python  python",
            ],
        ),
        (
            "a denial retried at each PATH entry is shown once",
            vec![
                request(7, "/usr/bin/sleep", SLEEP, "deny"),
                request(7, "/sbin/sleep", SLEEP, "deny"),
                request(7, "/bin/sleep", SLEEP, "deny"),
                exit(7),
            ],
            &["exec.request  pid 7 DENY /usr/bin/sleep  sleep 1"],
        ),
        (
            "a second denial after another request is shown again",
            vec![
                request(7, "/usr/bin/sleep", SLEEP, "deny"),
                request(7, "/usr/bin/true", r#"["true"]"#, "allow"),
                request(7, "/usr/bin/sleep", SLEEP, "deny"),
            ],
            &[
                "exec.request  pid 7 DENY /usr/bin/sleep  sleep 1",
                "exec.request  pid 7 ALLOW /usr/bin/true  true (did not run)",
                "exec.request  pid 7 DENY /usr/bin/sleep  sleep 1",
            ],
        ),
        (
            "an exec called by a thread: the request has the thread's id",
            vec![
                request(8, "/usr/bin/sleep", SLEEP, "allow"),
                exec(7, "/usr/bin/sleep", SLEEP),
                exit(7),
            ],
            &["exec          pid 7 ppid 1 uid 1000  /usr/bin/sleep  sleep 1"],
        ),
        (
            "an allow by a rule is a decision of its own",
            vec![
                request(7, "/usr/bin/sleep", SLEEP, "allow")
                    .replace(r#""source""#, r#""rule":"exec.rules=sleep","source""#),
                exec(7, "/usr/bin/sleep", SLEEP),
            ],
            &[
                "exec.request  pid 7 ALLOW /usr/bin/sleep  sleep 1 by exec.rules=sleep",
                "exec          pid 7 ppid 1 uid 1000  /usr/bin/sleep  sleep 1",
            ],
        ),
    ];
    for (what, events, expected) in cases {
        let lines: Vec<(u64, &str)> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (i as u64, e.as_str()))
            .collect();
        assert_eq!(shown(&records(&lines)), *expected, "{what}");
    }
}

#[test]
fn file_calls_are_counted_by_what_a_person_cares_about() {
    let ws = "/home/u/proj";
    let cases: &[(&str, &str, &str, FileUse)] = &[
        (
            "/lib/x86_64-linux-gnu/libc.so.6",
            "O_RDONLY|O_CLOEXEC",
            "ok",
            use_(true, true, None, false),
        ),
        (
            "/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0.11.2",
            "O_RDONLY|O_CLOEXEC",
            "ok",
            use_(true, true, None, false),
        ),
        (
            "/usr/lib/security/pam_unix.so",
            "O_RDONLY",
            "ok",
            use_(true, true, None, false),
        ),
        (
            "/etc/ld.so.cache",
            "O_RDONLY|O_CLOEXEC",
            "ok",
            use_(true, true, None, false),
        ),
        (
            "/usr/lib/locale/C.UTF-8/LC_CTYPE",
            "O_RDONLY|O_CLOEXEC",
            "ENOENT",
            use_(true, true, None, false),
        ),
        (
            "/usr/share/locale/C/LC_MESSAGES/coreutils.mo",
            "O_RDONLY",
            "ENOENT",
            use_(true, true, None, false),
        ),
        (
            "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache",
            "O_RDONLY",
            "ok",
            use_(true, true, None, false),
        ),
        (
            "/home/u/proj/libfoo.so.rs",
            "O_RDONLY",
            "ok",
            use_(true, false, None, false),
        ),
        (
            "/home/u/proj/src/main.rs",
            "O_WRONLY|O_CREAT|O_TRUNC",
            "ok",
            use_(true, false, Some(Place::Workspace), false),
        ),
        (
            "/home/u/proj",
            "O_RDWR",
            "ok",
            use_(true, false, Some(Place::Workspace), false),
        ),
        (
            "/home/u/project2/x",
            "O_WRONLY",
            "ok",
            use_(true, false, Some(Place::Elsewhere), false),
        ),
        (
            "target/debug/x",
            "O_RDWR|O_CREAT",
            "ok",
            use_(true, false, Some(Place::Relative), false),
        ),
        (
            "/tmp/x",
            "O_WRONLY|O_APPEND",
            "ok",
            use_(true, false, Some(Place::Elsewhere), false),
        ),
        (
            "/dev/null",
            "O_WRONLY|O_CREAT|O_TRUNC",
            "ok",
            use_(true, false, None, false),
        ),
        (
            "/dev/shm/x",
            "O_RDWR|O_CREAT",
            "ok",
            use_(true, false, Some(Place::Elsewhere), false),
        ),
        (
            "/home/u/proj/.git/hooks/pre-commit",
            "O_WRONLY|O_CREAT|O_TRUNC",
            "EROFS",
            use_(true, false, None, true),
        ),
        (
            "/home/u/.ssh/id_ed25519",
            "O_RDONLY",
            "EACCES",
            use_(true, false, None, true),
        ),
        (
            "/home/u/proj/missing",
            "O_WRONLY",
            "ENOENT",
            use_(true, false, None, false),
        ),
    ];
    for (path, flags, result, expected) in cases {
        let rec = &records(&[(1, &open(7, path, flags, result, 1))])[0];
        let f = rec.event.file_access().unwrap();
        assert_eq!(
            FileUse::of(&rec.event, f, ws),
            *expected,
            "{path} {flags} {result}"
        );
    }
    // The other file calls change the file system by themselves.
    let unlink = r#""kind":"file.unlink","pid":7,"path":"/home/u/proj/a","result":"ok","count":1"#;
    let rec = &records(&[(1, unlink)])[0];
    let used = FileUse::of(&rec.event, rec.event.file_access().unwrap(), ws);
    assert_eq!(used, use_(false, false, Some(Place::Workspace), false));
}

fn use_(open: bool, library: bool, write: Option<Place>, denied: bool) -> FileUse {
    FileUse {
        open,
        library,
        write,
        denied,
    }
}

#[test]
fn file_activity_is_one_line_per_program_once_its_records_are_in() {
    let events = [
        (0, START.to_string()),
        (10, exec(7, "/usr/bin/sh", r#"["sh"]"#)),
        (20, fork(8, 7)),
        (30, exec(8, "/usr/bin/make", r#"["make"]"#)),
        (90, exit(8)),
        // Written after the exit: the pipeline folds file calls over a window.
        (
            11,
            open(
                7,
                "/lib/x86_64-linux-gnu/libc.so.6",
                "O_RDONLY|O_CLOEXEC",
                "ok",
                1,
            ),
        ),
        (
            25,
            open(8, "/dev/null", "O_WRONLY|O_CREAT|O_TRUNC", "ok", 1),
        ),
        (
            31,
            open(8, "/etc/ld.so.cache", "O_RDONLY|O_CLOEXEC", "ok", 1),
        ),
        (
            32,
            open(
                8,
                "/lib/x86_64-linux-gnu/libc.so.6",
                "O_RDONLY|O_CLOEXEC",
                "ok",
                2,
            ),
        ),
        (33, open(8, "/home/u/proj/Makefile", "O_RDONLY", "ok", 1)),
        (
            34,
            open(8, "/home/u/proj/out.o", "O_WRONLY|O_CREAT|O_TRUNC", "ok", 3),
        ),
        (35, open(8, "/tmp/cc1.s", "O_RDWR|O_CREAT|O_EXCL", "ok", 1)),
        (36, open(8, "/home/u/.ssh/id_rsa", "O_RDONLY", "EACCES", 1)),
    ];
    let lines: Vec<(u64, &str)> = events.iter().map(|(t, e)| (*t, e.as_str())).collect();
    let recs = records(&lines);
    let mut view = ActionView::new();
    let mut seen: Vec<String> = recs.iter().flat_map(|r| view.push(r)).collect();
    let denied = "file.open     pid 8 /home/u/.ssh/id_rsa O_RDONLY EACCES";
    assert_eq!(seen.len(), 4, "{seen:#?}");
    assert!(
        seen[3].ends_with(denied),
        "a denial shows at once: {seen:#?}"
    );
    seen = view.files_written();
    assert_eq!(
        seen,
        [
            "06:14:28.004        files         pid 8 make: 10 opens (3 shared libraries/locales), 4 writes (3 under the workspace, 1 elsewhere), 1 denied"
        ],
        "at the exit's time, once the file window was written"
    );
    let end = view.finish();
    assert_eq!(
        end,
        ["06:14:28.012        files         pid 7 sh: 1 open (1 shared libraries/locales)"],
        "a process still running at the end"
    );
}

#[test]
fn a_reused_pid_gets_the_calls_made_after_its_fork() {
    // A forked child that has not exec'd yet goes by its parent's name.
    let events = [
        (0, START.to_string()),
        (5, exec(6, "/usr/bin/make", r#"["make"]"#)),
        (10, exec(7, "/usr/bin/cc", r#"["cc"]"#)),
        (20, exit(7)),
        (30, fork(7, 6)),
        (15, open(7, "/home/u/proj/a.c", "O_RDONLY", "ok", 1)),
        (
            45,
            open(7, "/home/u/proj/a.out", "O_WRONLY|O_CREAT", "ok", 1),
        ),
    ];
    let lines: Vec<(u64, &str)> = events.iter().map(|(t, e)| (*t, e.as_str())).collect();
    let shown = shown(&records(&lines));
    assert_eq!(
        shown[3..],
        [
            "files         pid 7 cc: 1 open",
            "files         pid 7 make: 1 open, 1 write (1 under the workspace)",
        ]
    );
}

#[test]
fn hostile_names_stay_on_one_line() {
    let events = [
        (10, exec(7, "/tmp/tr\\nue-\\\\xff", r#"["x"]"#)),
        (11, open(7, "/tmp/a\\nb", "O_RDONLY", "EACCES", 1)),
        (12, exit(7)),
    ];
    let lines: Vec<(u64, &str)> = events.iter().map(|(t, e)| (*t, e.as_str())).collect();
    let shown = shown(&records(&lines));
    assert!(shown.iter().all(|l| !l.contains('\n')), "{shown:#?}");
    assert!(
        shown[1].ends_with("'/tmp/a\\nb' O_RDONLY EACCES"),
        "{shown:#?}"
    );
    assert_eq!(
        shown[2],
        "files         pid 7 'tr\\nue-\\xff': 1 open, 1 denied"
    );
}

/// The demo session (`scripts/demo.sh`) as this machine recorded it, with the file records of
/// two of its processes: 137 records, 66 of them file opens.
#[test]
fn the_demo_session_as_a_person_sees_it() {
    let recs: Vec<Record> = include_str!("demo_session.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let shown = shown(&recs);
    let kinds = |kind: &str| shown.iter().filter(|l| l.starts_with(kind)).count();
    assert_eq!(kinds("exec.request"), 0, "{shown:#?}");
    assert_eq!(kinds("file.open"), 0, "{shown:#?}");
    assert_eq!(kinds("fork"), 0);
    assert_eq!(kinds("exit"), 0);
    assert_eq!(kinds("exec "), 11, "every exec that ran, once");
    let daemon: Vec<&String> = shown.iter().filter(|l| l.contains("pid 13087 ")).collect();
    assert_eq!(
        daemon,
        [
            "exec          pid 13087 ppid 1 uid 0  /usr/bin/setsid  setsid sleep 60",
            // Nine PATH entries tried (one of them twice), the last one ran.
            "exec          pid 13087 ppid 1 uid 0  /usr/bin/sleep  sleep 60 (found on PATH after 8 misses)",
            // `sleep` opened what `setsid` had: one record, counted 2.
            "files         pid 13087 setsid, sleep: 61 opens (60 shared libraries/locales)",
        ]
    );
    let files: Vec<&String> = shown.iter().filter(|l| l.starts_with("files")).collect();
    assert_eq!(
        files,
        [
            // /proc/filesystems, /etc/nsswitch.conf and /etc/passwd besides the libraries.
            "files         pid 13080 id: 35 opens (32 shared libraries/locales)",
            // `sleep` opened what `setsid` had: one record, counted 2.
            "files         pid 13087 setsid, sleep: 61 opens (60 shared libraries/locales)",
        ]
    );
    assert!(shown.last().unwrap().starts_with("session.end"));
    // 137 records: session start and end, 11 execs, 15 network and 4 approval lines, 2 files lines.
    assert_eq!(shown.len(), 34, "{shown:#?}");
}
