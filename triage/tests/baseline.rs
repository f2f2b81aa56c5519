//! Baselines on records as Warden writes them: a workspace's sessions are learnt until the
//! baseline is stable, then what a session does for the first time is a finding with its
//! evidence; what changes by itself from run to run (build hashes, temporary names, pids) is
//! not; a session with findings never enters; the file is shared safely and never silently
//! reset.
use std::path::Path;

use warden_records::events::Record;
use warden_triage::{
    BaselineState, Baselines, Feature, Finding, FindingSource, LEARNING_SESSIONS, Learnt, Severity,
    triage,
};

const HOME: &str = "/home/u";
const WS: &str = "/home/u/src/app";
/// The supervisor: the agent's parent, outside the session.
const SUPERVISOR: u32 = 1;

/// A small deterministic generator (xorshift), so that a run is reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// `n` characters of `alphabet`.
    fn word(&mut self, alphabet: &str, n: usize) -> String {
        let a = alphabet.as_bytes();
        (0..n)
            .map(|_| a[(self.next() % a.len() as u64) as usize] as char)
            .collect()
    }

    fn hex(&mut self, n: usize) -> String {
        self.word("0123456789abcdef", n)
    }

    /// What mktemp and the tempfile crate put in names.
    fn alnum(&mut self, n: usize) -> String {
        self.word(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            n,
        )
    }

    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(4),
            self.hex(4),
            self.hex(12)
        )
    }
}

/// One session's events, with the pids it hands out.
struct Session {
    id: String,
    events: Vec<String>,
    next_pid: u32,
    ended: bool,
    /// The agent's process.
    agent: u32,
}

impl Session {
    fn new(id: &str, first_pid: u32) -> Self {
        Session {
            id: id.to_string(),
            events: Vec::new(),
            next_pid: first_pid,
            ended: true,
            agent: 0,
        }
    }

    /// A fork of `parent` that runs `filename`; its pid.
    fn run(&mut self, parent: u32, filename: &str, argv: &[&str]) -> u32 {
        let pid = self.next_pid;
        self.next_pid += 1;
        if parent != SUPERVISOR {
            self.events
                .push(format!(r#""kind":"fork","pid":{pid},"ppid":{parent}"#));
        }
        self.exec(pid, parent, filename, argv);
        pid
    }

    fn exec(&mut self, pid: u32, ppid: u32, filename: &str, argv: &[&str]) {
        let argv: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
        self.events.push(format!(
            r#""kind":"exec","pid":{pid},"ppid":{ppid},"uid":1000,"gid":1000,"cgroup_id":1,"filename":{filename:?},"argv":[{}],"argv_bytes":1"#,
            argv.join(",")
        ));
    }

    fn exit(&mut self, pid: u32, ppid: u32) {
        self.events.push(format!(
            r#""kind":"exit","pid":{pid},"ppid":{ppid},"exit_code":0"#
        ));
    }

    fn lookup(&mut self, name: &str, verdict: &str) {
        self.events.push(format!(
            r#""kind":"dns.query","name":"{name}","qtype":"A","transport":"udp","client":"127.0.0.1:1","verdict":"{verdict}","rule":"r","rcode":"NoError","duration_us":1"#
        ));
    }

    fn write(&mut self, pid: u32, path: &str) {
        self.events.push(format!(
            r#""kind":"file.open","pid":{pid},"path":"{path}","flags":"O_WRONLY|O_CREAT|O_TRUNC","result":"ok","count":1"#
        ));
    }

    fn read(&mut self, pid: u32, path: &str) {
        self.events.push(format!(
            r#""kind":"file.open","pid":{pid},"path":"{path}","flags":"O_RDONLY","result":"ok","count":1"#
        ));
    }

    /// session.start, the events one second apart, session.end (unless unfinished).
    fn records(&self) -> Vec<Record> {
        let start = format!(
            r#""kind":"session.start","schema":1,"warden_version":"0","command":["/home/u/.local/bin/claude","--continue"],"user":"u","uid":1000,"gid":1000,"cgroup":"/sys/fs/cgroup/warden/s","cgroup_id":1,"supervisor_pid":1,"hostname":"h","kernel_programs":[],"settings_files":[],"layers":[],"missing_layers":[],"vcs_read_only":[],"vcs_pinned":[],"workspace":"{WS}","home":"{HOME}""#
        );
        let end = format!(
            r#""kind":"session.end","reason":"exited","exit_code":0,"status":0,"killed":0,"duration_ms":1,"records":{},"lost":0"#,
            self.events.len() + 1
        );
        std::iter::once(start)
            .chain(self.events.iter().cloned())
            .chain(self.ended.then_some(end))
            .enumerate()
            .map(|(i, fields)| {
                let line = format!(
                    r#"{{"session":"{}","seq":{i},"time":"2026-12-07T00:00:00.000000000Z","boot_ns":{},{fields}}}"#,
                    self.id,
                    1_000_000_000 * i as u64
                );
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"))
            })
            .collect()
    }
}

/// An ordinary session of the workspace: Claude Code building and testing a Rust crate, with
/// what changes from run to run by itself: pids, build hashes, temporary names, the agent's
/// version and transcript names, which of its usual tools it happens to use.
fn benign(seed: u64) -> Session {
    let mut r = Rng::new(seed);
    let mut s = Session::new(&format!("benign-{seed}"), 2000 + (r.next() % 30_000) as u32);
    let agent = s.run(
        SUPERVISOR,
        &format!("/home/u/.local/share/claude/versions/2.0.{}", 10 + seed / 4),
        &["claude", "--continue"],
    );
    s.agent = agent;
    s.lookup("api.anthropic.com", "allow");
    if r.chance(80) {
        s.lookup("statsig.anthropic.com", "allow");
    }
    s.lookup("o4504.ingest.us.sentry.io", "deny");
    s.write(
        agent,
        &format!(
            "/home/u/.claude/projects/-home-u-src-app/{}.jsonl",
            r.uuid()
        ),
    );
    let todo = format!("/home/u/.claude/todos/{}-agent-{}.json", r.uuid(), r.uuid());
    s.write(agent, &todo);
    s.write(agent, "/dev/null");

    // cargo build (the rustup proxy, then the toolchain's cargo)
    let sh = s.run(agent, "/usr/bin/bash", &["bash", "-c", "cargo build"]);
    let cargo = s.run(sh, "/home/u/.cargo/bin/cargo", &["cargo", "build"]);
    s.exec(
        cargo,
        sh,
        "/home/u/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/bin/cargo",
        &["cargo", "build"],
    );
    if r.chance(60) {
        s.lookup("index.crates.io", "allow");
        s.lookup("static.crates.io", "allow");
        s.write(
            cargo,
            "/home/u/.cargo/registry/index/index.crates.io-1949cf8c6b5b557f/.cache/se/rd/serde",
        );
        s.write(
            cargo,
            &format!(
                "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde-1.0.{}/src/lib.rs",
                200 + r.next() % 30
            ),
        );
    }
    let build_script = format!(
        "/home/u/src/app/target/debug/build/app-{}/build-script-build",
        r.hex(16)
    );
    let b = s.run(cargo, &build_script, &["build-script-build"]);
    s.exit(b, cargo);
    for _ in 0..2 + r.next() % 3 {
        let rustc = s.run(
            cargo,
            "/home/u/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/bin/rustc",
            &["rustc", "--crate-name", "app"],
        );
        s.write(rustc, &format!("/tmp/rustc{}/symbols.o", r.alnum(6)));
        let cc = s.run(rustc, "/usr/bin/cc", &["cc", "-m64"]);
        s.write(cc, &format!("/tmp/cc{}.res", r.alnum(6)));
        let ld = s.run(cc, "/usr/bin/ld", &["ld"]);
        s.exit(ld, cc);
        s.exit(cc, rustc);
        s.exit(rustc, cargo);
    }
    s.exit(cargo, sh);
    s.exit(sh, agent);

    if r.chance(70) {
        let sh = s.run(agent, "/usr/bin/bash", &["bash", "-c", "cargo test"]);
        let cargo = s.run(sh, "/home/u/.cargo/bin/cargo", &["cargo", "test"]);
        s.exec(
            cargo,
            sh,
            "/home/u/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/bin/cargo",
            &["cargo", "test"],
        );
        let test = s.run(
            cargo,
            &format!("/home/u/src/app/target/debug/deps/app-{}", r.hex(16)),
            &["app-test"],
        );
        s.write(test, &format!("/tmp/.tmp{}/fixture.json", r.alnum(6)));
        s.write(test, &format!("/proc/{test}/oom_score_adj"));
    }
    if r.chance(70) {
        let sh = s.run(
            agent,
            "/usr/bin/bash",
            &["bash", "-c", "git status && git diff"],
        );
        s.run(sh, "/usr/bin/git", &["git", "status"]);
        s.run(sh, "/usr/bin/git", &["git", "diff"]);
    }
    if r.chance(60) {
        let rg = s.run(agent, "/usr/bin/rg", &["rg", "fn main"]);
        s.read(rg, "/home/u/src/app/src/main.rs");
    }
    if r.chance(50) {
        let sh = s.run(
            agent,
            "/usr/bin/bash",
            &["bash", "-c", "f=$(mktemp); cargo metadata > $f"],
        );
        let mktemp = s.run(sh, "/usr/bin/mktemp", &["mktemp"]);
        s.write(mktemp, &format!("/tmp/tmp.{}", r.alnum(10)));
    }
    s
}

/// What `warden triage` does with a session: the built-in detections, the baseline's
/// deviations added to the report, then learning (the order `Baselines` documents). Returns
/// the deviations and what learning did.
fn triage_and_learn(baselines: &Baselines, records: &[Record]) -> (Vec<Finding>, Learnt) {
    let mut report = triage(records);
    let baseline = baselines.baseline_for(records).expect("baseline");
    let deviations = baseline.deviations(records);
    report.add(deviations.clone());
    let learnt = baselines
        .learn(records, !report.findings.is_empty())
        .expect("learn");
    (deviations, learnt)
}

/// Learns benign sessions from seed `from` on in `dir` until the baseline is stable; the
/// next seed.
fn stable_from(dir: &Path, from: u64) -> u64 {
    let baselines = Baselines::open(dir);
    for seed in from..from + 30 {
        let records = benign(seed).records();
        let (deviations, learnt) = triage_and_learn(&baselines, &records);
        assert!(deviations.is_empty(), "learning judges nothing");
        assert!(matches!(learnt, Learnt::Added { .. }), "{seed}: {learnt}");
        let b = baselines.baseline_for(&records).unwrap();
        if b.state() == BaselineState::Stable {
            return seed + 1;
        }
    }
    panic!("the baseline never became stable");
}

fn stable(dir: &Path) -> u64 {
    stable_from(dir, 0)
}

fn ids(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.detection.as_str()).collect()
}

#[test]
fn learning_then_stable_then_what_is_new_is_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let baselines = Baselines::open(dir.path());
    let first = benign(0).records();
    let b = baselines.baseline_for(&first).unwrap();
    assert_eq!((b.state(), b.sessions()), (BaselineState::Learning, 0));
    let next = stable(dir.path());
    let b = baselines.baseline_for(&first).unwrap();
    assert!(next >= LEARNING_SESSIONS, "{next}");
    assert_eq!(b.sessions(), next);
    assert_eq!(b.prevalence(Feature::Domain, "api.anthropic.com"), 1.0);
    assert_eq!(
        b.prevalence(
            Feature::Binary,
            "target/debug/build/app-*/build-script-build"
        ),
        1.0
    );
    assert_eq!(b.prevalence(Feature::Domain, "api.evil.test"), 0.0);
    assert!(
        b.to_string().starts_with(&format!(
            "baseline of {WS} with claude: stable, {next} sessions learnt"
        )),
        "{b}"
    );

    // (what the session does besides its ordinary work, the baseline's findings)
    type Extra = fn(&mut Session);
    let cases: Vec<(&str, Extra, Vec<&str>)> = vec![
        ("nothing new", |_| {}, vec![]),
        (
            "a new domain",
            |s| s.lookup("api.evil.test", "allow"),
            vec!["baseline-new-domain"],
        ),
        (
            "a refused lookup counts",
            |s| s.lookup("paste.evil.test", "deny"),
            vec!["baseline-new-domain"],
        ),
        (
            "a new program (its process shape is not said twice)",
            |s| {
                s.run(s.agent, "/opt/tools/bin/exfil", &["exfil"]);
            },
            vec!["baseline-new-binary"],
        ),
        (
            "known programs started by others",
            |s| {
                let git = s.run(s.agent, "/usr/bin/git", &["git", "status"]);
                s.run(git, "/usr/bin/bash", &["bash"]);
            },
            vec!["baseline-new-process-shape"],
        ),
        (
            "a write in a new place outside the workspace",
            |s| s.write(s.agent, "/home/u/.config/evil/run.sh"),
            vec!["baseline-new-write-outside-workspace"],
        ),
        (
            "several of one kind are one finding",
            |s| {
                for name in ["a.evil.test", "b.evil.test", "c.evil.test", "d.evil.test"] {
                    s.lookup(name, "allow");
                }
            },
            vec!["baseline-new-domain"],
        ),
        // What changes by itself from run to run is not new.
        (
            "another build hash",
            |s| {
                let sh = s.run(s.agent, "/usr/bin/bash", &["bash", "-c", "cargo test"]);
                let cargo = s.run(sh, "/home/u/.cargo/bin/cargo", &["cargo", "test"]);
                let deps = "/home/u/src/app/target/debug/deps/app-0f1e2d3c4b5a6978";
                s.run(cargo, deps, &["app"]);
            },
            vec![],
        ),
        (
            "temporary names",
            |s| {
                s.write(s.agent, "/tmp/rustcZZ9yy8/symbols.o");
                s.write(s.agent, "/tmp/ccQ7wE2r.res");
            },
            vec![],
        ),
        (
            "pids",
            |s| s.write(s.agent, "/proc/31337/oom_score_adj"),
            vec![],
        ),
        (
            "a CDN's random host name under a known one",
            |s| s.lookup("O4599.ingest.us.sentry.io.", "deny"),
            vec![],
        ),
    ];
    for (seed, (what, extra, want)) in (1000..).zip(cases) {
        let mut s = benign(seed);
        extra(&mut s);
        let records = s.records();
        let found = b.deviations(&records);
        let mut got = ids(&found);
        got.sort_unstable();
        let mut want = want;
        want.sort_unstable();
        assert_eq!(got, want, "{what}: {found:#?}");
    }
}

#[test]
fn a_new_domain_has_its_evidence_and_narrative() {
    let dir = tempfile::tempdir().unwrap();
    let next = stable(dir.path());
    let baselines = Baselines::open(dir.path());
    let mut s = benign(next);
    s.lookup("api.evil.test", "allow");
    s.lookup("api.evil.test", "allow");
    s.lookup("api.evil.test\\u001b[31m", "allow");
    let records = s.records();
    let seqs: Vec<u64> = records
        .iter()
        .filter(|r| matches!(&r.event, warden_records::events::Event::DnsQuery(q) if q.name.contains("evil")))
        .map(|r| r.seq)
        .collect();
    let b = baselines.baseline_for(&records).unwrap();
    let found = b.deviations(&records);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert_eq!(f.detection, "baseline-new-domain");
    assert_eq!(f.source, FindingSource::Baseline);
    assert_eq!(f.severity, Severity::Medium);
    assert!(f.techniques.is_empty());
    assert_eq!(f.count, 3);
    assert_eq!(
        f.evidence,
        vec![warden_triage::SeqRange {
            first: seqs[0],
            last: seqs[2]
        }]
    );
    assert_eq!(
        f.narrative,
        format!(
            "first seen: looked up api.evil.test, api.evil.test\\u{{1b}}[31m (0 of {next} earlier sessions of this workspace and agent; first at seq {})",
            seqs[0]
        )
    );
    // The report puts it among the built-in findings, by severity.
    let mut report = triage(&records);
    report.add(found);
    let text = warden_triage::text(&report);
    assert!(
        text.contains("\nMEDIUM   baseline-new-domain\n  first seen: looked up api.evil.test"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn a_session_learnt_twice_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let baselines = Baselines::open(dir.path());
    let records = benign(0).records();
    let cases = [
        Learnt::Added { sessions: 1 },
        Learnt::AlreadyLearnt,
        Learnt::AlreadyLearnt,
    ];
    for want in cases {
        assert_eq!(baselines.learn(&records, false).unwrap(), want);
    }
    let b = baselines.baseline_for(&records).unwrap();
    assert_eq!(b.sessions(), 1);
    assert_eq!(b.prevalence(Feature::Domain, "api.anthropic.com"), 1.0);

    let mut unfinished = benign(1);
    unfinished.ended = false;
    assert_eq!(
        baselines.learn(&unfinished.records(), false).unwrap(),
        Learnt::Unfinished
    );
}

#[test]
fn a_session_with_findings_never_enters() {
    // (when the attack comes: after how many benign sessions; whether the caller said it had
    // findings, or learn has to see its deviations itself)
    let cases = [
        ("while learning", 2, true),
        ("once stable", 0, true),
        ("once stable, deviations only", 0, false),
    ];
    for (when, after, builtin) in cases {
        let dir = tempfile::tempdir().unwrap();
        let baselines = Baselines::open(dir.path());
        let mut seed = 0;
        if after == 0 {
            seed = stable(dir.path());
        } else {
            for _ in 0..after {
                triage_and_learn(&baselines, &benign(seed).records());
                seed += 1;
            }
        }
        let mut attack = benign(seed);
        seed += 1;
        attack.lookup("drop.evil.test", "allow");
        if builtin {
            attack.read(3, "/home/u/.ssh/id_ed25519");
        }
        let records = attack.records();
        let (_, learnt) = triage_and_learn(&baselines, &records);
        assert_eq!(learnt, Learnt::HadFindings, "{when}");
        if after == 0 {
            // A stable baseline sees the deviations itself, whatever the caller says.
            assert_eq!(
                baselines.learn(&records, false).unwrap(),
                Learnt::HadFindings,
                "{when}: a caller that left the deviations out"
            );
        }

        // Learn on until stable; the attacker's domain is still new.
        let mut b = baselines.baseline_for(&records).unwrap();
        while b.state() != BaselineState::Stable {
            triage_and_learn(&baselines, &benign(seed).records());
            seed += 1;
            b = baselines.baseline_for(&records).unwrap();
        }
        assert_eq!(
            b.prevalence(Feature::Domain, "drop.evil.test"),
            0.0,
            "{when}"
        );
        let mut again = benign(seed);
        again.lookup("drop.evil.test", "allow");
        let (found, learnt) = triage_and_learn(&baselines, &again.records());
        assert_eq!(ids(&found), ["baseline-new-domain"], "{when}");
        assert_eq!(learnt, Learnt::HadFindings, "{when}");
    }
}

#[test]
fn an_accepted_session_is_learnt_and_the_baseline_keeps_judging() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = stable(dir.path());
    let baselines = Baselines::open(dir.path());
    let with_jq = |seed| {
        let mut s = benign(seed);
        s.run(s.agent, "/usr/bin/jq", &["jq", ".version", "Cargo.json"]);
        s.records()
    };
    let records = with_jq(seed);
    seed += 1;
    let (found, learnt) = triage_and_learn(&baselines, &records);
    assert_eq!(ids(&found), ["baseline-new-binary"]);
    assert_eq!(learnt, Learnt::HadFindings);
    // A person looked at it: jq is fine.
    let before = baselines.baseline_for(&records).unwrap().sessions();
    assert_eq!(
        baselines.accept(&records).unwrap(),
        Learnt::Added {
            sessions: before + 1
        }
    );
    assert_eq!(baselines.accept(&records).unwrap(), Learnt::AlreadyLearnt);
    let b = baselines.baseline_for(&records).unwrap();
    assert_eq!(b.state(), BaselineState::Changed);
    // (the session, the findings while changed)
    let mut evil = benign(seed);
    seed += 1;
    evil.lookup("c2.evil.test", "allow");
    let cases = [
        (with_jq(seed), vec![]),
        (evil.records(), vec!["baseline-new-domain"]),
    ];
    for (records, want) in cases {
        assert_eq!(ids(&b.deviations(&records)), want);
    }
    for _ in 0..warden_triage::QUIET_SESSIONS {
        seed += 1;
        triage_and_learn(&baselines, &with_jq(seed));
    }
    let b = baselines.baseline_for(&records).unwrap();
    assert_eq!(b.state(), BaselineState::Stable, "{b}");
}

#[test]
fn benign_sessions_after_learning_are_rarely_findings() {
    // Each workspace's sessions differ in what they happen to do, so each learns its own way.
    const WORKSPACES: u64 = 10;
    const SESSIONS: u64 = 20;
    let mut per_workspace = Vec::new();
    let mut learning = Vec::new();
    let mut examples = Vec::new();
    for w in 0..WORKSPACES {
        let dir = tempfile::tempdir().unwrap();
        let baselines = Baselines::open(dir.path());
        let from = w * 10_000;
        let first = stable_from(dir.path(), from);
        learning.push(first - from);
        let mut false_findings = 0;
        for seed in first..first + SESSIONS {
            let (found, _) = triage_and_learn(&baselines, &benign(seed).records());
            false_findings += found.len();
            examples.extend(found.into_iter().map(|f| f.narrative));
        }
        per_workspace.push(false_findings);
    }
    println!(
        "{WORKSPACES} workspaces, stable after {learning:?} sessions, then {SESSIONS} benign \
         sessions each: false findings {per_workspace:?}, {} in all",
        per_workspace.iter().sum::<usize>()
    );
    assert!(
        per_workspace.iter().all(|&n| n <= 1),
        "{per_workspace:?}: {examples:#?}"
    );
}

#[test]
fn concurrent_learners_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    const EACH: u64 = 12;
    std::thread::scope(|scope| {
        for t in 0..2 {
            let dir = dir.path();
            scope.spawn(move || {
                // Each thread opens its own handle: two triages are two processes.
                let baselines = Baselines::open(dir);
                for i in 0..EACH {
                    let records = benign(t * 100 + i).records();
                    assert!(matches!(
                        baselines.learn(&records, false).unwrap(),
                        Learnt::Added { .. }
                    ));
                }
            });
        }
    });
    let baselines = Baselines::open(dir.path());
    let b = baselines.baseline_for(&benign(0).records()).unwrap();
    assert_eq!(b.sessions(), 2 * EACH);
    for t in 0..2 {
        for i in 0..EACH {
            let records = benign(t * 100 + i).records();
            assert_eq!(
                baselines.learn(&records, false).unwrap(),
                Learnt::AlreadyLearnt
            );
        }
    }
}

#[test]
fn a_damaged_baseline_is_an_error_naming_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let baselines = Baselines::open(dir.path());
    let records = benign(0).records();
    baselines.learn(&records, false).unwrap();
    let path = baselines
        .baseline_for(&records)
        .unwrap()
        .path()
        .to_path_buf();
    let valid = std::fs::read_to_string(&path).unwrap();
    // (the file's contents, what the error says)
    let cases = [
        ("{\"version\": 1, \"learnt\": [", "is damaged"),
        ("", "is damaged"),
        (
            "{\"version\": 7}",
            "is format version 7; this Warden reads version 1",
        ),
        (
            &valid.replace(WS, "/home/u/src/other"),
            "belongs to workspace /home/u/src/other with agent claude",
        ),
    ];
    for (contents, says) in cases {
        std::fs::write(&path, contents).unwrap();
        for err in [
            baselines.baseline_for(&records).err(),
            baselines.learn(&benign(1).records(), false).err(),
        ] {
            let msg = err.expect("an error").to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(says), "{msg}");
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            contents,
            "left as it was"
        );
    }
}
