//! The built-in detections: what an honest coding task does not do. Each matches single
//! records (a file touched, a program run, a lookup) or counts them over the session; the
//! decisions are here, in plain tables, so that each one is tested without a kernel.
use warden_records::events::{Event, FileAccess, Record, Verdict};

use crate::{correlations, dns_names, finding::Severity, lineage::Lineage};

/// Paths of a session as triage judges them.
pub struct Paths {
    pub home: String,
    pub workspace: String,
}

/// What a correlating detection may ask about the session so far.
pub struct Context<'a> {
    pub paths: &'a Paths,
    pub lineage: &'a Lineage,
}

/// A detection over records that only mean something together (across processes and time):
/// fed every record in time order, with its process, it hands back the records that became
/// its evidence (earlier ones it kept among them).
pub trait Correlator: Send {
    fn push(&mut self, r: &Record, proc: Option<usize>, cx: &Context) -> Vec<Record>;
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
                .strip_prefix(p.home.as_str())
                .and_then(|r| r.strip_prefix('/'))
                .is_some_and(|r| matches_rel(r, rel)),
            At::Root(abs) => matches_rel(path, abs),
            At::Anywhere(part) => mentions(path, part),
        }
    }
}

/// Whether `path` has `part` (`/.git/hooks/`) in it, or starts with it when it is relative
/// (`.git/hooks/pre-commit`, `./.mcp.json`: opened from the directory that holds it).
fn mentions(path: &str, part: &str) -> bool {
    let relative = !path.starts_with('/');
    let path = path.trim_start_matches("./");
    path.contains(part)
        || (relative
            && part
                .strip_prefix('/')
                .is_some_and(|rel| path.starts_with(rel)))
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
    Exec(fn(&str, &[String], &Paths) -> bool),
    /// At least `at_least` matching records in the session.
    Count {
        at_least: u64,
        what: fn(&Event, &Paths) -> bool,
    },
    /// Denials of at least `at_least` different things within `window_ns`.
    Burst { at_least: u64, window_ns: u64 },
    /// Records that only mean something together (across processes and time).
    Correlated(fn() -> Box<dyn Correlator>),
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
pub const CREDENTIAL_FILES: &[At] = &[
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
        id: "secret-exfiltration",
        severity: Severity::Critical,
        techniques: &["T1552.001", "T1132", "T1041", "T1048"],
        what: "read a secret, then sent data out from the same piece of work within two minutes (maybe encoded on the way)",
        matcher: Matcher::Correlated(|| Box::<correlations::SecretThenEgress>::default()),
    },
    Detection {
        id: "reverse-shell",
        severity: Severity::Critical,
        techniques: &["T1059.004", "T1095"],
        what: "ran a program whose input or a shell's output is a network connection (a reverse shell)",
        matcher: Matcher::Count {
            at_least: 1,
            what: reverse_shell,
        },
    },
    Detection {
        id: "install-script-network",
        severity: Severity::High,
        techniques: &["T1195.002", "T1105"],
        what: "a package manager's install step ran a network program (an install script downloading or connecting on its own)",
        matcher: Matcher::Correlated(|| Box::new(correlations::InstallScriptNetwork)),
    },
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
            what: another_process_secrets,
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
        id: "controls-disabled",
        severity: Severity::High,
        techniques: &["T1562.001", "T1070.003"],
        what: "turned a control off: skipped hooks or an agent's permission checks, or stopped shell history",
        matcher: Matcher::Exec(disables_controls),
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
        what: "made DNS lookups that carry data in their names (over a DNS budget, encoded labels, or many distinct names under one domain)",
        matcher: Matcher::Correlated(|| Box::<dns_names::Tunnelling>::default()),
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
        what: "was refused at many different doors in a short time (probing the sandbox)",
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

/// The file an open reads: any open that is not a write, nor an O_PATH probe (which reads
/// nothing; Warden's launcher makes many setting up Landlock).
pub fn read_path(e: &Event) -> Option<&str> {
    match e {
        Event::FileOpen(f)
            if !writes(f) && !f.flags.as_deref().is_some_and(|fl| fl.contains("O_PATH")) =>
        {
            Some(f.path.as_str())
        }
        _ => None,
    }
}

fn program<'a>(filename: &'a str, argv: &'a [String]) -> &'a str {
    program_name(argv.first().map(String::as_str).unwrap_or(filename))
}

const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "fish"];

fn download_and_execute(filename: &str, argv: &[String], p: &Paths) -> bool {
    // A workspace may itself live in /tmp: what the task builds there is its own.
    let in_workspace = !p.workspace.is_empty() && filename.starts_with(p.workspace.as_str());
    let from_scratch = !in_workspace
        && ["/tmp/", "/dev/shm/", "/var/tmp/", "/memfd:"]
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
pub fn program_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

fn network_tool(filename: &str, argv: &[String], _: &Paths) -> bool {
    [
        "nc", "ncat", "netcat", "socat", "telnet", "nmap", "masscan", "tcpdump",
    ]
    .contains(&program(filename, argv))
}

pub fn another_process_secrets(e: &Event, _: &Paths) -> bool {
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

/// Flags and words that switch a control off: git's hooks and signing, agents' permission
/// prompts and sandboxes, shell history.
const BYPASSES: &[&str] = &[
    "--no-verify",
    "--dangerously-skip-permissions",
    "--dangerously-bypass-approvals-and-sandbox",
    "--yolo",
    "core.hooksPath=/dev/null",
    "commit.gpgsign=false",
    "HISTFILE=/dev/null",
    "unset HISTFILE",
    "set +o history",
    "history -c",
];

fn disables_controls(_: &str, argv: &[String], _: &Paths) -> bool {
    argv.iter().any(|a| BYPASSES.iter().any(|b| a.contains(b)))
}

/// An exec (found, run or refused) whose stdin is a network socket, or a shell or interpreter
/// whose output is.
fn reverse_shell(e: &Event, _: &Paths) -> bool {
    const INTERPRETERS: &[&str] = &["python", "perl", "ruby", "php", "node", "lua", "awk"];
    let Event::ExecRequest(x) = e else {
        return false;
    };
    let interpreter = SHELLS.contains(&x.program.as_str())
        || INTERPRETERS.iter().any(|i| x.program.starts_with(i));
    x.resolved.is_some()
        && x.stdio_sockets
            .iter()
            .any(|s| s.fd == 0 || (interpreter && s.fd == 1))
}

fn git_hooks(e: &Event, _: &Paths) -> bool {
    let hook_written = written_paths(e)
        .iter()
        .any(|p| mentions(p, "/.git/hooks/") && !p.ends_with(".sample"));
    let hooks_path = match e {
        Event::Exec(x) => {
            program(&x.filename, &x.argv) == "git"
                && x.argv.iter().any(|a| a.contains("core.hooksPath"))
        }
        _ => false,
    };
    hook_written || hooks_path
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
    let Some(rel) = path
        .strip_prefix(p.home.as_str())
        .and_then(|r| r.strip_prefix('/'))
    else {
        return false;
    };
    let in_workspace = !p.workspace.is_empty() && path.starts_with(p.workspace.as_str());
    !in_workspace && !TOOL_DIRS.iter().any(|t| rel.starts_with(t))
}

/// What a denial (of any layer) refused, as a key: retries of one refused thing (a resolver
/// asking again, glibc trying nscd on every lookup) are one door tried, not many.
pub fn denied_target(e: &Event) -> Option<String> {
    match e {
        Event::SyscallDenied(d) => Some(format!("syscall {}", d.syscall)),
        Event::LsmDenied(d) => Some(format!(
            "lsm {} {}",
            d.hook,
            d.protected.as_deref().unwrap_or(&d.rule)
        )),
        Event::ApprovalRefused(a) => Some(format!("approval {}", a.peer_pid)),
        Event::ExecRequest(x) if x.verdict == Verdict::Deny => Some(format!("exec {}", x.filename)),
        Event::NetConnect(n) | Event::NetSend(n) if n.verdict == Verdict::Deny => {
            Some(format!("net {}:{}", n.address, n.port))
        }
        Event::DnsQuery(q) if q.verdict == Verdict::Deny => Some(format!("dns {}", q.name)),
        Event::UnixConnect(u) | Event::UnixSend(u) if u.verdict == Verdict::Deny => {
            Some(format!("unix {}", u.path))
        }
        e => e
            .file_access()
            .filter(|f| f.result == "EACCES" || f.result == "EPERM")
            .map(|f| format!("file {}", f.path)),
    }
}

/// Whether one record matches a per-record matcher.
pub fn matches(m: &Matcher, e: &Event, p: &Paths) -> bool {
    match m {
        Matcher::Read(places) => read_matches(e, places, p),
        Matcher::Write(places) => written_paths(e)
            .iter()
            .any(|path| places.iter().any(|a| a.matches(path, p))),
        Matcher::Exec(f) => match e {
            Event::Exec(x) => f(&x.filename, &x.argv, p),
            Event::ExecRequest(x) if x.verdict == Verdict::Deny => f(&x.filename, &x.argv, p),
            _ => false,
        },
        Matcher::Count { what, .. } => what(e, p),
        Matcher::Burst { .. } => denied_target(e).is_some(),
        // Judged by its correlator, with what came before.
        Matcher::Correlated(_) => false,
    }
}

/// An open of a file at one of `places`. An attempt counts, whatever it got: a denied read of
/// a key is still the act. An O_PATH open reads nothing (a tool looking whether a file is
/// there).
pub fn read_matches(e: &Event, places: &[At], p: &Paths) -> bool {
    match e {
        Event::FileOpen(f) if !f.flags.as_deref().is_some_and(|fl| fl.contains("O_PATH")) => {
            places.iter().any(|a| a.matches(&f.path, p))
        }
        _ => false,
    }
}
