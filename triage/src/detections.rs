//! The built-in detections: what an honest coding task does not do. Each matches single
//! records (a file touched, a program run, a lookup) or counts them over the session; the
//! decisions are here, in plain tables, so that each one is tested without a kernel.
use warden_records::events::{Event, FileAccess, Verdict};

use crate::finding::Severity;

/// Paths of a session as triage judges them.
pub struct Paths<'a> {
    pub home: &'a str,
    pub workspace: &'a str,
}

/// Where a path pattern is anchored.
#[derive(Clone, Copy)]
pub enum At {
    /// Beneath the user's home directory (`.ssh/` is `~/.ssh/...`; a trailing `/` means a
    /// directory and everything in it, a trailing `*` every name that starts so).
    Home(&'static str),
    /// An absolute path or directory.
    Root(&'static str),
    /// Any path with this part (`/.git/hooks/`).
    Anywhere(&'static str),
}

impl At {
    fn matches(self, path: &str, p: &Paths) -> bool {
        match self {
            At::Home(rel) => path
                .strip_prefix(p.home)
                .and_then(|r| r.strip_prefix('/'))
                .is_some_and(|r| matches_rel(r, rel)),
            At::Root(abs) => matches_rel(path, abs),
            At::Anywhere(part) => path.contains(part),
        }
    }
}

/// `rel` names a file exactly, a directory and what is in it (ending in `/`), or every name
/// that starts with it (ending in `*`).
fn matches_rel(path: &str, rel: &str) -> bool {
    if let Some(stem) = rel.strip_suffix('*') {
        path.starts_with(stem)
    } else if rel.ends_with('/') {
        path.starts_with(rel) || path == rel.trim_end_matches('/')
    } else {
        path == rel
    }
}

/// What a detection looks at.
pub enum Matcher {
    /// A file opened for reading (or at all) at one of these places.
    Read(&'static [At]),
    /// A file written, created, truncated, linked, renamed or removed at one of these places.
    Write(&'static [At]),
    /// A program run, or refused by the exec gate (the attempt counts), judged by its path
    /// and arguments.
    Exec(fn(&str, &[String]) -> bool),
    /// At least `at_least` matching records in the session.
    Count {
        at_least: u64,
        what: fn(&Event, &Paths) -> bool,
    },
    /// At least `at_least` denials within `window_ns`.
    Burst { at_least: u64, window_ns: u64 },
}

pub struct Detection {
    pub id: &'static str,
    pub severity: Severity,
    pub techniques: &'static [&'static str],
    /// What it means, for the narrative: "read credential files".
    pub what: &'static str,
    pub matcher: Matcher,
}

/// Secrets no coding tool reads on its own (the files package managers and CLIs read for their
/// own logins, `.npmrc`, `.pypirc`, `.netrc`, docker's and gh's, are left out: npm install
/// reads `.npmrc`).
const CREDENTIAL_FILES: &[At] = &[
    At::Home(".ssh/id_*"),
    At::Home(".aws/"),
    At::Home(".config/gcloud/"),
    At::Home(".azure/"),
    At::Home(".kube/config"),
    At::Home(".docker/config.json"),
    At::Home(".git-credentials"),
    At::Home(".gnupg/"),
    At::Home(".password-store/"),
    At::Home(".codex/auth.json"),
    At::Home(".claude/.credentials.json"),
    At::Home(".config/warden/"),
];

const SHELL_STARTUP: &[At] = &[
    At::Home(".bashrc"),
    At::Home(".bash_profile"),
    At::Home(".bash_login"),
    At::Home(".profile"),
    At::Home(".zshrc"),
    At::Home(".zprofile"),
    At::Home(".zshenv"),
    At::Home(".config/fish/config.fish"),
    At::Root("/etc/profile.d/"),
    At::Root("/etc/bash.bashrc"),
];

const SCHEDULED: &[At] = &[
    At::Root("/etc/cron.d/"),
    At::Root("/etc/crontab"),
    At::Root("/etc/cron.daily/"),
    At::Root("/etc/cron.hourly/"),
    At::Root("/var/spool/cron/"),
    At::Root("/etc/systemd/system/"),
    At::Home(".config/systemd/user/"),
    At::Home(".config/autostart/"),
];

const AGENT_CONFIG: &[At] = &[
    At::Home(".codex/config.toml"),
    At::Home(".claude/settings.json"),
    At::Home(".claude.json"),
    At::Home(".cursor/mcp.json"),
    At::Anywhere("/.mcp.json"),
    At::Anywhere("/.claude/settings.local.json"),
    At::Anywhere("/.vscode/tasks.json"),
];

const HISTORY: &[At] = &[
    At::Home(".bash_history"),
    At::Home(".zsh_history"),
    At::Home(".python_history"),
    At::Home(".local/share/fish/fish_history"),
];

/// The library, in the order findings are listed at the same severity.
pub const DETECTIONS: &[Detection] = &[
    Detection {
        id: "credential-files-read",
        severity: Severity::High,
        techniques: &["T1552.001", "T1552.004"],
        what: "opened credential files outside the workspace (keys, cloud CLIs' and agents' tokens, git credentials)",
        matcher: Matcher::Read(CREDENTIAL_FILES),
    },
    Detection {
        id: "process-memory-read",
        severity: Severity::High,
        techniques: &["T1003.007", "T1552"],
        what: "read another process's environment or memory through /proc",
        matcher: Matcher::Count {
            at_least: 1,
            what: other_process_secrets,
        },
    },
    Detection {
        id: "persistence-authorized-keys",
        severity: Severity::Critical,
        techniques: &["T1098.004"],
        what: "changed ~/.ssh/authorized_keys",
        matcher: Matcher::Write(&[At::Home(".ssh/authorized_keys")]),
    },
    Detection {
        id: "persistence-scheduled",
        severity: Severity::Critical,
        techniques: &["T1053.003", "T1543.002", "T1547.013"],
        what: "wrote cron entries, systemd units or autostart files",
        matcher: Matcher::Write(SCHEDULED),
    },
    Detection {
        id: "persistence-shell-startup",
        severity: Severity::High,
        techniques: &["T1546.004"],
        what: "changed shell startup files",
        matcher: Matcher::Write(SHELL_STARTUP),
    },
    Detection {
        id: "persistence-git-hooks",
        severity: Severity::High,
        techniques: &["T1546"],
        what: "wrote git hooks, or pointed git at other hooks (core.hooksPath)",
        matcher: Matcher::Count {
            at_least: 1,
            what: git_hooks,
        },
    },
    Detection {
        id: "agent-config-changed",
        severity: Severity::High,
        techniques: &["T1546", "T1562.001"],
        what: "changed an agent's own configuration, hooks or MCP servers",
        matcher: Matcher::Write(AGENT_CONFIG),
    },
    Detection {
        id: "history-wiped",
        severity: Severity::Medium,
        techniques: &["T1070.003"],
        what: "removed or emptied shell history",
        matcher: Matcher::Write(HISTORY),
    },
    Detection {
        id: "download-and-execute",
        severity: Severity::High,
        techniques: &["T1105", "T1059.004"],
        what: "piped a download or decoded data into a shell, or ran a program from /tmp, /dev/shm or memory",
        matcher: Matcher::Exec(download_and_execute),
    },
    Detection {
        id: "network-tools",
        severity: Severity::Medium,
        techniques: &["T1095", "T1046"],
        what: "ran raw network tools (nc, socat, nmap...)",
        matcher: Matcher::Exec(network_tool),
    },
    Detection {
        id: "dns-tunnelling",
        severity: Severity::High,
        techniques: &["T1071.004", "T1048"],
        what: "made DNS lookups over the session's DNS budgets (data may leave in the names)",
        matcher: Matcher::Count {
            at_least: 1,
            what: over_dns_budget,
        },
    },
    Detection {
        id: "mass-deletion",
        severity: Severity::High,
        techniques: &["T1485"],
        what: "removed many files",
        matcher: Matcher::Count {
            at_least: 200,
            what: removed_a_file,
        },
    },
    Detection {
        id: "home-reads-outside-workspace",
        severity: Severity::Medium,
        techniques: &["T1005", "T1083"],
        what: "read many files in the user's home outside the workspace and tool caches",
        matcher: Matcher::Count {
            at_least: 25,
            what: home_read_outside_task,
        },
    },
    Detection {
        id: "denial-burst",
        severity: Severity::Medium,
        techniques: &["T1211"],
        what: "was refused many times in a short time (probing the sandbox)",
        matcher: Matcher::Burst {
            at_least: 10,
            window_ns: 10_000_000_000,
        },
    },
];

/// An `open` that may write (its flags say so).
pub fn writes(f: &FileAccess) -> bool {
    f.flags.as_deref().is_some_and(|fl| {
        ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"]
            .iter()
            .any(|w| fl.contains(w))
    })
}

/// The file calls that change the name space or a file's content, with the paths changed.
pub fn written_paths(e: &Event) -> Vec<&str> {
    match e {
        Event::FileOpen(f) if writes(f) => vec![f.path.as_str()],
        Event::FileTruncate(f) | Event::FileUnlink(f) | Event::FileSymlink(f) => {
            vec![f.path.as_str()]
        }
        Event::FileLink(f) | Event::FileRename(f) => {
            let mut v = vec![f.path.as_str()];
            v.extend(f.path2.as_deref());
            v
        }
        _ => Vec::new(),
    }
}

/// The files an open reads (any open that is not a write).
pub fn read_path(e: &Event) -> Option<&str> {
    match e {
        Event::FileOpen(f) if !writes(f) => Some(f.path.as_str()),
        _ => None,
    }
}

fn program<'a>(filename: &'a str, argv: &'a [String]) -> &'a str {
    program_name(argv.first().map(String::as_str).unwrap_or(filename))
}

const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "fish"];

fn download_and_execute(filename: &str, argv: &[String]) -> bool {
    let from_scratch = ["/tmp/", "/dev/shm/", "/var/tmp/", "/memfd:"]
        .iter()
        .any(|d| filename.starts_with(d));
    let script = match argv {
        [sh, flag, script, ..] if SHELLS.contains(&program_name(sh)) && flag == "-c" => script,
        _ => return from_scratch,
    };
    let fetches = ["curl ", "wget ", "base64 -d", "base64 --decode", "xxd -r"]
        .iter()
        .any(|f| script.contains(f));
    let into_shell = SHELLS
        .iter()
        .any(|s| script.contains(&format!("| {s}")) || script.contains(&format!("|{s}")));
    from_scratch || (fetches && into_shell)
}

/// The file name of a path.
pub(crate) fn program_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

fn network_tool(filename: &str, argv: &[String]) -> bool {
    [
        "nc", "ncat", "netcat", "socat", "telnet", "nmap", "masscan", "tcpdump",
    ]
    .contains(&program(filename, argv))
}

fn other_process_secrets(e: &Event, _: &Paths) -> bool {
    let Some(path) = read_path(e).or(match e {
        Event::FileOpen(f) => Some(f.path.as_str()),
        _ => None,
    }) else {
        return false;
    };
    let Some(rest) = path.strip_prefix("/proc/") else {
        return false;
    };
    let (pid, what) = rest.split_once('/').unwrap_or((rest, ""));
    pid.bytes().all(|b| b.is_ascii_digit()) && matches!(what, "environ" | "mem")
}

fn git_hooks(e: &Event, _: &Paths) -> bool {
    let hook_written = written_paths(e)
        .iter()
        .any(|p| p.contains("/.git/hooks/") && !p.ends_with(".sample"));
    let hooks_path = match e {
        Event::Exec(x) => {
            program(&x.filename, &x.argv) == "git"
                && x.argv.iter().any(|a| a.contains("core.hooksPath"))
        }
        _ => false,
    };
    hook_written || hooks_path
}

fn over_dns_budget(e: &Event, _: &Paths) -> bool {
    matches!(e, Event::DnsQuery(q) if q.budget.is_some())
}

fn removed_a_file(e: &Event, _: &Paths) -> bool {
    matches!(e, Event::FileUnlink(f) if f.result == "ok")
}

/// Under the user's home, outside the workspace and the places tools read every day.
fn home_read_outside_task(e: &Event, p: &Paths) -> bool {
    const TOOL_DIRS: &[&str] = &[
        ".cargo/",
        ".rustup/",
        ".npm/",
        ".cache/",
        ".local/",
        ".config/git/",
        ".gitconfig",
        ".pyenv/",
        ".nvm/",
        ".bashrc",
        ".profile",
        ".terminfo/",
        ".inputrc",
    ];
    let Some(path) = read_path(e) else {
        return false;
    };
    let Some(rel) = path.strip_prefix(p.home).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    let in_workspace = !p.workspace.is_empty() && path.starts_with(p.workspace);
    !in_workspace && !TOOL_DIRS.iter().any(|t| rel.starts_with(t))
}

/// Whether a record is a denial (of any layer).
pub fn is_denial(e: &Event) -> bool {
    match e {
        Event::SyscallDenied(_) | Event::LsmDenied(_) | Event::ApprovalRefused(_) => true,
        Event::ExecRequest(x) => x.verdict == Verdict::Deny,
        Event::NetConnect(n) | Event::NetSend(n) => n.verdict == Verdict::Deny,
        Event::DnsQuery(q) => q.verdict == Verdict::Deny,
        Event::UnixConnect(u) | Event::UnixSend(u) => u.verdict == Verdict::Deny,
        e => e
            .file_access()
            .is_some_and(|f| f.result == "EACCES" || f.result == "EPERM"),
    }
}

/// Whether a detection matches one record (for the per-record kinds).
pub fn matches(d: &Detection, e: &Event, p: &Paths) -> bool {
    match &d.matcher {
        Matcher::Read(places) => {
            // An attempt counts, whatever it got: a denied read of a key is still the act. An
            // O_PATH open reads nothing (a tool looking whether a file is there).
            let path = match e {
                Event::FileOpen(f)
                    if !f.flags.as_deref().is_some_and(|fl| fl.contains("O_PATH")) =>
                {
                    Some(f.path.as_str())
                }
                _ => None,
            };
            path.is_some_and(|path| places.iter().any(|a| a.matches(path, p)))
        }
        Matcher::Write(places) => written_paths(e)
            .iter()
            .any(|path| places.iter().any(|a| a.matches(path, p))),
        Matcher::Exec(f) => match e {
            Event::Exec(x) => f(&x.filename, &x.argv),
            Event::ExecRequest(x) if x.verdict == Verdict::Deny => f(&x.filename, &x.argv),
            _ => false,
        },
        Matcher::Count { what, .. } => what(e, p),
        Matcher::Burst { .. } => is_denial(e),
    }
}
