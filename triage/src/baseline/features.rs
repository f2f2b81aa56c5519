//! What a baseline learns of one session, each thing normalised so that what changes from run
//! to run by itself (build hashes, temporary names, pids, versions) does not look new.
use std::collections::HashMap;

use warden_records::events::{Event, Record};

use super::Feature;
use crate::detections::{program_name, written_paths};

/// One thing the session did, at one record.
pub struct Observation {
    pub feature: Feature,
    /// As the baseline keeps it (normalised).
    pub item: String,
    /// As the record has it, for the narrative.
    pub raw: String,
    pub seq: u64,
    /// Calls the record stands for (a folded file record stands for several).
    pub calls: u64,
}

/// Where paths are judged from: the session's workspace and home directory.
pub struct Places {
    workspace: Vec<String>,
    home: Vec<String>,
}

impl Places {
    pub fn new(workspace: &str, home: &str) -> Self {
        let absolute = |p: &str| {
            let (abs, parts) = lexical(p);
            if abs { parts } else { Vec::new() }
        };
        Places {
            workspace: absolute(workspace),
            home: absolute(home),
        }
    }
}

/// The parent of a session's first process: the supervisor, outside the records.
const OUTSIDE: &str = "(session)";

/// Everything the session did that a baseline learns, in record order.
pub fn observe(records: &[Record], at: &Places) -> Vec<Observation> {
    let mut out = Vec::new();
    // The program each live process runs, for the parent side of a process shape. The process
    // tree (`warden_records::process_tree`) drops the records' seqs, which the evidence needs.
    let mut images: HashMap<u32, String> = HashMap::new();
    for r in records {
        let mut see = |feature, item: String, raw: &str, calls| {
            out.push(Observation {
                feature,
                item,
                raw: raw.to_string(),
                seq: r.seq,
                calls,
            })
        };
        match &r.event {
            Event::DnsQuery(q) if !q.name.is_empty() => {
                see(Feature::Domain, domain(&q.name), &q.name, 1);
            }
            Event::Exec(x) => {
                see(Feature::Binary, binary(&x.filename, at), &x.filename, 1);
                let child = program_name(&x.filename);
                // A forked child still runs its parent's image, so this is the program that
                // started it, or the one it replaces.
                let parent = images
                    .get(&x.pid)
                    .or_else(|| images.get(&x.ppid))
                    .map_or(OUTSIDE, String::as_str);
                let shape = format!("{} -> {}", generalise(parent), generalise(child));
                see(Feature::Shape, shape, &format!("{parent} -> {child}"), 1);
                images.insert(x.pid, child.to_string());
            }
            // An exec the gate held: what it ran, or tried to (a refusal has no exec record).
            Event::ExecRequest(x) => {
                let file = x.resolved.as_deref().unwrap_or(&x.filename);
                see(Feature::Binary, binary(file, at), file, 1);
            }
            Event::Fork(f) => match images.get(&f.ppid).cloned() {
                Some(image) => {
                    images.insert(f.pid, image);
                }
                None => {
                    images.remove(&f.pid);
                }
            },
            Event::Exit(x) => {
                images.remove(&x.pid);
            }
            e => {
                let calls = e.file_access().map_or(1, |f| f.count.max(1));
                for path in written_paths(e) {
                    if let Some(item) = written_outside(path, at) {
                        see(Feature::Write, item, path, calls);
                    }
                }
            }
        }
    }
    out
}

/// A DNS name, lower case; labels below the registrable part (the last two labels) generalised,
/// so that a CDN's per-object or per-region names are one item, while a new site is new (a
/// name kept whole also tells `evil.github.io` from `docs.github.io`, which a registrable
/// domain alone would not).
fn domain(name: &str) -> String {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let kept = labels.len().saturating_sub(2);
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i < kept {
                generalise(l)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A program's path: relative to the workspace when inside it, `~` for home, generalised.
fn binary(path: &str, at: &Places) -> String {
    let (anchor, parts) = place(path, at);
    render(anchor, &parts, usize::MAX)
}

/// A path written outside the workspace, generalised and cut to three levels (`/**` for the
/// rest): a cache's inner layout changes with what it caches, which is not news.
fn written_outside(path: &str, at: &Places) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    match place(path, at) {
        (Anchor::Workspace, _) => None,
        (anchor, parts) => Some(render(anchor, &parts, 3)),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Anchor {
    Workspace,
    Home,
    Root,
    /// A relative path that climbs out of where it starts (`../..`).
    Above,
}

/// Where a path is, and its components from there. A relative path is taken as relative to
/// the agent's working directory, the workspace, unless it climbs out of it.
fn place(path: &str, at: &Places) -> (Anchor, Vec<String>) {
    let (absolute, parts) = lexical(path);
    if !absolute {
        let anchor = match parts.first() {
            Some(p) if p == ".." => Anchor::Above,
            _ => Anchor::Workspace,
        };
        return (anchor, parts);
    }
    for (base, anchor) in [(&at.workspace, Anchor::Workspace), (&at.home, Anchor::Home)] {
        if !base.is_empty() && parts.starts_with(base) {
            return (anchor, parts[base.len()..].to_vec());
        }
    }
    (Anchor::Root, parts)
}

/// Whether `path` is absolute, and its components with `.`, `..` and repeated `/` resolved
/// (without the file system: a symlink is not followed).
fn lexical(path: &str) -> (bool, Vec<String>) {
    let absolute = path.starts_with('/');
    let mut parts: Vec<String> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => match parts.last() {
                Some(last) if last != ".." => {
                    parts.pop();
                }
                _ if absolute => {}
                _ => parts.push("..".into()),
            },
            p => parts.push(p.to_string()),
        }
    }
    (absolute, parts)
}

/// Temporary directories: the name of what is made in them is random by design.
const SCRATCH: &[&[&str]] = &[&["tmp"], &["var", "tmp"], &["dev", "shm"]];

/// The item for a placed path, at most `depth` components deep below its anchor (not counting
/// a relative path's leading `..`).
fn render(anchor: Anchor, parts: &[String], depth: usize) -> String {
    let scratch = match anchor {
        Anchor::Root => SCRATCH
            .iter()
            .find(|s| parts.len() > s.len() && s.iter().zip(parts).all(|(a, b)| a == b))
            .map(|s| s.len()),
        _ => None,
    };
    let climb = parts.iter().take_while(|p| *p == "..").count();
    let mut out: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if Some(i) == scratch {
                "*".to_string()
            } else if p == ".." {
                p.clone()
            } else {
                generalise(p)
            }
        })
        .collect();
    if out.len() > climb + depth {
        out.truncate(climb + depth);
        out.push("**".into());
    }
    let joined = out.join("/");
    match anchor {
        Anchor::Workspace if joined.is_empty() => ".".into(),
        Anchor::Workspace | Anchor::Above => joined,
        Anchor::Home => format!("~/{joined}"),
        Anchor::Root => format!("/{joined}"),
    }
}

/// A name with its random-looking parts as `*`: UUIDs, hashes (`foo-1a2b3c4d5e6f7a8b`), random
/// tokens (`.tmpAbC12d`, `cc8XyZ12.s`), and every run of digits (pids, versions, ports).
pub fn generalise(name: &str) -> String {
    let name = without_uuids(name);
    let mut out = String::with_capacity(name.len());
    let mut token = String::new();
    for c in name.chars().chain(std::iter::once('/')) {
        if c.is_ascii_alphanumeric() {
            token.push(c);
            continue;
        }
        if random(&token) {
            out.push('*');
        } else {
            let mut in_digits = false;
            for t in token.chars() {
                if t.is_ascii_digit() {
                    if !in_digits {
                        out.push('*');
                    }
                } else {
                    out.push(t);
                }
                in_digits = t.is_ascii_digit();
            }
        }
        token.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// Whether a run of letters and digits looks random rather than named: a hash (hex, with a
/// digit, 8 or more long), or 6 or more characters that switch between lower case, upper case
/// and digits often (names do it at word starts: `JetBrains` is a name, `tmpXyZ123` is not).
fn random(token: &str) -> bool {
    let b = token.as_bytes();
    let digits = b.iter().any(u8::is_ascii_digit);
    let hash = b.len() >= 8 && digits && b.iter().all(u8::is_ascii_hexdigit);
    let class = |c: u8| (c.is_ascii_digit(), c.is_ascii_uppercase());
    let switches = b.windows(2).filter(|w| class(w[0]) != class(w[1])).count();
    hash || (b.len() >= 6 && switches >= 4) || (b.len() >= 8 && switches >= 3 && digits)
}

/// `name` with each UUID (8-4-4-4-12 hex digits) as `*`: its short groups alone would not all
/// look random.
fn without_uuids(name: &str) -> String {
    const LEN: usize = 36;
    let b = name.as_bytes();
    let uuid_at = |i: usize| {
        b.get(i..i + LEN).is_some_and(|w| {
            w.iter().enumerate().all(|(j, &c)| match j {
                8 | 13 | 18 | 23 => c == b'-',
                _ => c.is_ascii_hexdigit(),
            })
        }) && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && b.get(i + LEN).is_none_or(|c| !c.is_ascii_alphanumeric())
    };
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if uuid_at(i) {
            // A UUID is ASCII: `i` and `i + LEN` are character boundaries.
            out.push_str(&name[copied..i]);
            out.push('*');
            i += LEN;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&name[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_words_and_lose_random_parts() {
        let cases = [
            ("cargo", "cargo"),
            ("app-1a2b3c4d5e6f7a8b", "app-*"),
            ("python3.12", "python*.*"),
            ("sha256sum", "sha*sum"),
            ("x86_64-unknown-linux-gnu", "x*_*-unknown-linux-gnu"),
            ("JetBrains", "JetBrains"),
            (".tmpAbC12d", ".*"),
            ("cc8XyZ12.s", "*.s"),
            ("tmp.Xa3bQ9zK1p", "tmp.*"),
            ("550e8400-e29b-41d4-a716-446655440000.jsonl", "*.jsonl"),
            ("f3abcdef-abcd-abcd-abcd-abcdefabcdef-agent", "*-agent"),
            ("1234", "*"),
            ("d3g5x2qk4", "*"),
            ("deadbeef", "deadbeef"),
            ("répertoire-2", "répertoire-*"),
        ];
        for (name, want) in cases {
            assert_eq!(generalise(name), want, "{name}");
        }
    }

    #[test]
    fn domains_keep_the_registrable_part() {
        let cases = [
            ("index.crates.io", "index.crates.io"),
            ("Index.Crates.IO.", "index.crates.io"),
            ("d1a2b3c4d5e6f7.cloudfront.net", "*.cloudfront.net"),
            ("o4504.ingest.us.sentry.io", "o*.ingest.us.sentry.io"),
            (
                "ec2-3-4-5-6.compute-1.amazonaws.com",
                "ec*-*-*-*-*.compute-*.amazonaws.com",
            ),
            ("a1b2c3d4e5.x7k2m9q1.test", "*.x7k2m9q1.test"),
        ];
        for (name, want) in cases {
            assert_eq!(domain(name), want, "{name}");
        }
    }

    #[test]
    fn paths_are_placed_and_generalised() {
        let at = Places::new("/home/u/src/app", "/home/u");
        let binaries = [
            (
                "/home/u/src/app/target/debug/deps/app-1a2b3c4d5e6f7a8b",
                "target/debug/deps/app-*",
            ),
            ("./target/debug/app", "target/debug/app"),
            ("/home/u/.cargo/bin/cargo", "~/.cargo/bin/cargo"),
            ("/usr/bin/python3.12", "/usr/bin/python*.*"),
            ("/tmp/x/../payload", "/tmp/*"),
            ("/tmp/rustcAbC123/build", "/tmp/*/build"),
            ("/home/u/src/app/../../.local/bin/x", "~/.local/bin/x"),
        ];
        for (path, want) in binaries {
            assert_eq!(binary(path, &at), want, "{path}");
        }
        let writes = [
            ("/home/u/src/app/src/main.rs", None),
            ("src/main.rs", None),
            ("/home/u/src/app2/x", Some("~/src/app*/x")),
            ("/tmp/tmp.Xa3bQ9zK1p", Some("/tmp/*")),
            ("/tmp/.tmpAbC12d/out.o", Some("/tmp/*/out.o")),
            ("/var/tmp/cc8XyZ12.s", Some("/var/tmp/*")),
            ("/proc/4321/oom_score_adj", Some("/proc/*/oom_score_adj")),
            ("/dev/pts/3", Some("/dev/pts/*")),
            ("/home/u/.bashrc", Some("~/.bashrc")),
            (
                "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde-1.0.228/src/lib.rs",
                Some("~/.cargo/registry/src/**"),
            ),
            (
                "../../.ssh/authorized_keys",
                Some("../../.ssh/authorized_keys"),
            ),
            ("", None),
        ];
        for (path, want) in writes {
            assert_eq!(written_outside(path, &at).as_deref(), want, "{path}");
        }
    }
}
