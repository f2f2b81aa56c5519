//! The actions view of a session's records (`warden run --events`): what a person acts on
//! (execs, exec decisions, denials, approvals, network, findings, the session's start and
//! end), each record as [`render::line`] writes it, and the rest folded:
//!
//! - an exec found through PATH is one line: the allowed `exec.request`s of the entries tried
//!   before it (same process, same argv, same file name, another directory) fold into the
//!   `exec` that ran; a denied one retried at each entry is shown once;
//! - file activity becomes one line per process once it has exited and its file records are
//!   in (they are folded over a window, so they come after the exit): its opens, how many of
//!   them shared libraries and locales, its writes by place, its denials. A denied file call
//!   is also shown on its own line.
//!
//! Forks and exits are not shown. The audit log keeps every record; this is only what a
//! terminal shows.
use std::collections::HashMap;

use crate::events::{
    Event, Exec, ExecRequest, FileAccess, Fork, Record, Verdict, escape::shell_word, render,
};

/// The kind column of a process's file activity line.
pub const FILES_LABEL: &str = "files";

/// File call results that are a refusal (Landlock, the LSM layer, read-only VCS metadata,
/// permissions), shown one by one.
const DENIED: &[&str] = &["EACCES", "EPERM", "EROFS"];

/// What the dynamic loader and the C library's locale code open in every process.
const LIBRARY_PREFIXES: &[&str] = &[
    "/etc/ld.so.",
    "/usr/lib/locale/",
    "/usr/share/locale/",
    "/usr/share/locale-langpack/",
    "/usr/share/i18n/",
    "/usr/share/zoneinfo/",
    "/etc/localtime",
];

fn is_library(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    // `libc.so.6`, `libgcc_s.so.1`, `ld-linux-x86-64.so.2`, `pam_unix.so`.
    let shared_object = name.ends_with(".so")
        || name.split_once(".so.").is_some_and(|(_, version)| {
            !version.is_empty() && version.chars().all(|c| c.is_ascii_digit() || c == '.')
        });
    shared_object
        || path.contains("/gconv/")
        || LIBRARY_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Where a write went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Workspace,
    /// A relative path (the process's working directory is not recorded).
    Relative,
    Elsewhere,
}

/// One file record, as the summary counts it.
#[derive(Debug, PartialEq, Eq)]
struct FileUse {
    open: bool,
    library: bool,
    write: Option<Place>,
    denied: bool,
}

impl FileUse {
    fn of(event: &Event, f: &FileAccess, workspace: &str) -> Self {
        let open = matches!(event, Event::FileOpen(_));
        let writes = match &f.flags {
            Some(flags) => flags
                .split('|')
                .any(|flag| ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"].contains(&flag)),
            // link, rename, unlink, symlink, truncate
            None => !open,
        };
        // Devices (/dev/null, the terminal) are not files anyone acts on.
        let device = f.path.starts_with("/dev/") && !f.path.starts_with("/dev/shm/");
        let place = if f.dirfd.is_some() || !f.path.starts_with('/') {
            Place::Relative
        } else if !workspace.is_empty()
            && f.path
                .strip_prefix(workspace)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        {
            Place::Workspace
        } else {
            Place::Elsewhere
        };
        FileUse {
            open,
            library: open && is_library(&f.path),
            write: (writes && f.result == "ok" && !device).then_some(place),
            denied: DENIED.contains(&f.result.as_str()),
        }
    }
}

/// The file activity of one process.
#[derive(Default)]
struct FileCounts {
    opens: u64,
    libraries: u64,
    writes_workspace: u64,
    writes_relative: u64,
    writes_elsewhere: u64,
    denied: u64,
}

impl FileCounts {
    fn add(&mut self, u: &FileUse, count: u64) {
        self.opens += u64::from(u.open) * count;
        self.libraries += u64::from(u.library) * count;
        match u.write {
            Some(Place::Workspace) => self.writes_workspace += count,
            Some(Place::Relative) => self.writes_relative += count,
            Some(Place::Elsewhere) => self.writes_elsewhere += count,
            None => {}
        }
        self.denied += u64::from(u.denied) * count;
    }

    fn is_empty(&self) -> bool {
        self.opens + self.writes() + self.denied == 0
    }

    fn writes(&self) -> u64 {
        self.writes_workspace + self.writes_relative + self.writes_elsewhere
    }

    /// `57 opens (49 shared libraries/locales), 3 writes (2 under the workspace, 1
    /// elsewhere), 1 denied`.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.opens > 0 {
            let mut s = counted(self.opens, "open", "opens");
            if self.libraries > 0 {
                s.push_str(&format!(" ({} shared libraries/locales)", self.libraries));
            }
            parts.push(s);
        }
        if self.writes() > 0 {
            let places: Vec<String> = [
                (self.writes_workspace, "under the workspace"),
                (self.writes_relative, "to relative paths"),
                (self.writes_elsewhere, "elsewhere"),
            ]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, place)| format!("{n} {place}"))
            .collect();
            parts.push(format!(
                "{} ({})",
                counted(self.writes(), "write", "writes"),
                places.join(", ")
            ));
        }
        if self.denied > 0 {
            parts.push(format!("{} denied", self.denied));
        }
        parts.join(", ")
    }
}

fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A process: the programs it ran and its file activity. File records are folded over a
/// window that can span an exec (the same library opened by `setsid` and by the `sleep` it
/// runs is one record), so the activity is the process's, not one program's.
#[derive(Default)]
struct Process {
    /// A forked child's name until it execs: its parent's.
    forked_as: String,
    programs: Vec<String>,
    files: FileCounts,
}

impl Process {
    fn name(&self) -> &str {
        self.programs.last().unwrap_or(&self.forked_as)
    }

    /// The file activity line, if there was any.
    fn summary(&self, pid: u32, time: &str) -> Option<String> {
        if self.files.is_empty() {
            return None;
        }
        let names = match self.programs.is_empty() {
            true => std::slice::from_ref(&self.forked_as),
            false => &self.programs[..],
        };
        let names: Vec<String> = names
            .iter()
            .filter(|n| !n.is_empty())
            .map(|n| shell_word(n))
            .collect();
        let who = match names.is_empty() {
            true => format!("pid {pid}"),
            false => format!("pid {pid} {}", names.join(", ")),
        };
        let details = format!("{who}: {}", self.files.describe());
        Some(render::view_line(time, "", FILES_LABEL, &details))
    }
}

/// A process that exited, until its file records are in.
struct Exited {
    pid: u32,
    exit_ns: u64,
    time: String,
    process: Process,
}

/// What makes exec requests one lookup: the same argv, the same file name.
#[derive(Clone, PartialEq, Eq)]
struct LookupKey {
    argv: Vec<String>,
    name: String,
}

impl LookupKey {
    fn of(argv: &[String], filename: &str) -> Self {
        LookupKey {
            argv: argv.to_vec(),
            name: file_name(filename).to_string(),
        }
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// An allowed exec's decision worth its own line: a rule decided it, or its standard streams
/// are network sockets.
fn says_more_than_allowed(rec: &Record) -> bool {
    match &rec.event {
        Event::ExecRequest(r) => r.rule.is_some() || !r.stdio_sockets.is_empty(),
        _ => false,
    }
}

/// The allowed requests of one lookup, until its exec comes (or the process gives up).
struct Lookup {
    key: LookupKey,
    requests: Vec<Record>,
}

/// The actions view: records in, in the order they are written; the lines to show out.
#[derive(Default)]
pub struct ActionView {
    /// The session's workspace (escaped, as `session.start` has it).
    workspace: String,
    running: HashMap<u32, Process>,
    /// Exited processes whose file records may still come.
    exited: Vec<Exited>,
    lookups: HashMap<u32, Lookup>,
    /// The last denied lookup shown, per process.
    denied: HashMap<u32, LookupKey>,
    /// The time of the latest record, for the lines written at the end.
    last_time: String,
}

impl ActionView {
    pub fn new() -> Self {
        Self::default()
    }

    /// The lines a record adds to the view (often none, sometimes a folded line of earlier
    /// records).
    pub fn push(&mut self, rec: &Record) -> Vec<String> {
        rec.time.clone_into(&mut self.last_time);
        let mut out = Vec::new();
        // Every kind is named: a new one needs a decision here.
        match &rec.event {
            Event::SessionStart(s) => {
                s.workspace.clone_into(&mut self.workspace);
                out.push(render::line(rec));
            }
            Event::ExecRequest(r) => self.exec_request(rec, r, &mut out),
            Event::Exec(e) => self.exec(rec, e, &mut out),
            Event::Fork(f) => self.fork(f),
            Event::Exit(x) => self.exit(rec, x.pid, &mut out),
            Event::FileOpen(f)
            | Event::FileLink(f)
            | Event::FileRename(f)
            | Event::FileUnlink(f)
            | Event::FileSymlink(f)
            | Event::FileTruncate(f) => self.file(rec, f, &mut out),
            Event::SessionEnd(_) => {
                out.extend(self.finish());
                out.push(render::line(rec));
            }
            Event::SyscallDenied(_)
            | Event::LsmDenied(_)
            | Event::NetConnect(_)
            | Event::NetSend(_)
            | Event::UnixConnect(_)
            | Event::UnixSend(_)
            | Event::DnsQuery(_)
            | Event::ApprovalRequest(_)
            | Event::Approval(_)
            | Event::ApprovalRefused(_)
            | Event::RequirementsChanged(_)
            | Event::LimitReached(_)
            | Event::CredentialUse(_)
            | Event::Finding(_)
            | Event::EventsLost(_)
            | Event::AgentPrompt(_)
            | Event::AgentToolCall(_)
            | Event::ExportBacklog(_)
            // The agent guard's own log, never a session's: shown if ever met.
            | Event::GuardArmed(_)
            | Event::GuardKilled(_)
            | Event::GuardDisarmed(_) => out.push(render::line(rec)),
        }
        out
    }

    /// Every file call made before the records pushed so far has been pushed (the pipeline's
    /// file window was written out): the file activity lines of the processes that exited.
    pub fn files_written(&mut self) -> Vec<String> {
        self.exited
            .drain(..)
            .filter_map(|x| x.process.summary(x.pid, &x.time))
            .collect()
    }

    /// The end of the records: lookups that never ran, and every file activity line left.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut pids: Vec<u32> = self.lookups.keys().copied().collect();
        pids.sort_unstable();
        for pid in pids {
            self.not_run(pid, &mut out);
        }
        out.extend(self.files_written());
        let mut running: Vec<(u32, Process)> = self.running.drain().collect();
        running.sort_by_key(|(pid, _)| *pid);
        out.extend(
            running
                .iter()
                .filter_map(|(pid, p)| p.summary(*pid, &self.last_time)),
        );
        out
    }

    fn exec_request(&mut self, rec: &Record, r: &ExecRequest, out: &mut Vec<String>) {
        let key = LookupKey::of(&r.argv, &r.filename);
        // Another command ends the lookup before it: that one did not run.
        if self.lookups.get(&r.pid).is_some_and(|l| l.key != key) {
            self.not_run(r.pid, out);
        }
        if r.verdict == Verdict::Allow {
            self.denied.remove(&r.pid);
            self.lookups
                .entry(r.pid)
                .or_insert_with(|| Lookup {
                    key,
                    requests: Vec::new(),
                })
                .requests
                .push(rec.clone());
            return;
        }
        // The entries tried before a denial were misses of the lookup it ended.
        self.lookups.remove(&r.pid);
        // The same denial at the next PATH entry (a shell tries them all) says nothing new.
        if self.denied.get(&r.pid) != Some(&key) {
            out.push(render::line(rec));
            self.denied.insert(r.pid, key);
        }
    }

    fn exec(&mut self, rec: &Record, e: &Exec, out: &mut Vec<String>) {
        let mut line = render::line(rec);
        if let Some(mut lookup) = self.take_lookup(e) {
            if let Some(ran) = lookup.requests.pop()
                && says_more_than_allowed(&ran)
            {
                out.push(render::line(&ran));
            }
            let misses = lookup.requests.len() as u64;
            if misses > 0 {
                line.push_str(&format!(
                    " (found on PATH after {})",
                    counted(misses, "miss", "misses")
                ));
            }
        }
        out.push(line);
        self.denied.remove(&e.pid);
        let process = self.running.entry(e.pid).or_default();
        process.programs.push(file_name(&e.filename).to_string());
    }

    /// The lookup an exec ends: its process's, or, for an exec called by another thread than
    /// the leader (the request has the thread's id), the one that asked for this exec.
    fn take_lookup(&mut self, e: &Exec) -> Option<Lookup> {
        if let Some(l) = self.lookups.remove(&e.pid) {
            return Some(l);
        }
        let tid = self.lookups.iter().find_map(|(tid, l)| {
            let last = l.requests.last()?;
            match &last.event {
                Event::ExecRequest(r) if r.filename == e.filename && r.argv == e.argv => Some(*tid),
                _ => None,
            }
        })?;
        self.lookups.remove(&tid)
    }

    /// A lookup no exec followed: one line, the last path tried.
    fn not_run(&mut self, pid: u32, out: &mut Vec<String>) {
        let Some(lookup) = self.lookups.remove(&pid) else {
            return;
        };
        let Some(last) = lookup.requests.last() else {
            return;
        };
        let tries = lookup.requests.len() as u64;
        let mut line = render::line(last);
        if tries > 1 {
            line.push_str(&format!(" (did not run; {tries} paths tried)"));
        } else {
            line.push_str(" (did not run)");
        }
        out.push(line);
    }

    fn fork(&mut self, f: &Fork) {
        let name = self
            .running
            .get(&f.ppid)
            .map(|p| p.name().to_string())
            .unwrap_or_default();
        let child = Process {
            forked_as: name,
            ..Process::default()
        };
        self.running.insert(f.pid, child);
    }

    fn exit(&mut self, rec: &Record, pid: u32, out: &mut Vec<String>) {
        self.not_run(pid, out);
        self.denied.remove(&pid);
        let process = self.running.remove(&pid).unwrap_or_default();
        self.exited.push(Exited {
            pid,
            exit_ns: rec.boot_ns,
            time: rec.time.clone(),
            process,
        });
    }

    fn file(&mut self, rec: &Record, f: &FileAccess, out: &mut Vec<String>) {
        let used = FileUse::of(&rec.event, f, &self.workspace);
        if used.denied {
            out.push(render::line(rec));
        }
        // The process that made the call: one that exited after it, else the one running.
        let process = match self
            .exited
            .iter()
            .position(|x| x.pid == f.pid && rec.boot_ns <= x.exit_ns)
        {
            Some(i) => &mut self.exited[i].process,
            None => self.running.entry(f.pid).or_default(),
        };
        process.files.add(&used, f.count);
    }
}

#[cfg(test)]
mod tests;
