//! Which process each record belongs to, and what ran that process, from the session's own
//! fork, exec and exit records as they come: what correlating detections ask ("did a package
//! manager start this?", "are these two calls parts of one pipeline?").
//!
//! A process is one lifetime of a pid (pids are reused in long sessions): a fork, or the first
//! record of a pid, opens it and its exit closes it. File calls are logged when folded, up to a
//! second after they happened, so a record may come after its process's exit: a closed process
//! still owns records that happened before its exit, for a while.
use std::collections::HashMap;

use warden_records::events::{Event, Record};

/// Ancestors looked at, at most: a chain deeper than this is not a task's process tree.
const MAX_DEPTH: usize = 64;
/// Of each image's argv, what is kept: the detections look at the program and its first
/// words (`npm install`), and a live session runs for hours.
const KEPT_ARGS: usize = 8;
const KEPT_ARG_CHARS: usize = 256;
/// How long after its exit a process may still get records (folding's delay, with margin).
const LATE_RECORDS_NS: u64 = 5_000_000_000;

#[derive(Debug, Default)]
pub struct Proc {
    pub pid: u32,
    pub parent: Option<usize>,
    /// The first words of the argv of each program image it ran, in order.
    pub images: Vec<Vec<String>>,
}

#[derive(Debug, Default)]
pub struct Lineage {
    pub procs: Vec<Proc>,
    live: HashMap<u32, usize>,
    /// Processes that exited lately: pid -> (process, exit time).
    exited: HashMap<u32, (usize, u64)>,
}

impl Lineage {
    /// The process the record belongs to, when it is about one; forks, execs and exits
    /// update the tree.
    pub fn push(&mut self, r: &Record) -> Option<usize> {
        let proc = match &r.event {
            Event::Fork(f) => {
                let parent = self.live.get(&f.ppid).copied();
                Some(self.open(f.pid, parent))
            }
            Event::Exec(x) => {
                let i = self.find_or_open(x.pid, Some(x.ppid), r.boot_ns);
                self.procs[i].images.push(head_of(&x.argv));
                Some(i)
            }
            e => e.pid().map(|pid| {
                let ppid = match e {
                    Event::Exit(x) => Some(x.ppid),
                    _ => None,
                };
                self.find_or_open(pid, ppid, r.boot_ns)
            }),
        };
        if let (Event::Exit(x), Some(i)) = (&r.event, proc) {
            self.live.remove(&x.pid);
            self.exited.insert(x.pid, (i, r.boot_ns));
            if self.exited.len() > 4096 {
                let now = r.boot_ns;
                self.exited
                    .retain(|_, (_, at)| now.saturating_sub(*at) <= LATE_RECORDS_NS);
            }
        }
        proc
    }

    fn open(&mut self, pid: u32, parent: Option<usize>) -> usize {
        self.procs.push(Proc {
            pid,
            parent,
            images: Vec::new(),
        });
        let i = self.procs.len() - 1;
        self.live.insert(pid, i);
        self.exited.remove(&pid);
        i
    }

    fn find_or_open(&mut self, pid: u32, ppid: Option<u32>, at: u64) -> usize {
        if let Some(&i) = self.live.get(&pid) {
            return i;
        }
        // A record of a process that exited after the record happened.
        if let Some(&(i, exit)) = self.exited.get(&pid)
            && at <= exit
        {
            return i;
        }
        let parent = ppid.and_then(|p| self.live.get(&p).copied());
        self.open(pid, parent)
    }

    /// The process's ancestors, nearest first.
    pub fn ancestors(&self, proc: usize) -> impl Iterator<Item = &Proc> {
        self.chain(proc).map(|p| &self.procs[p])
    }

    fn chain(&self, proc: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(self.procs[proc].parent, |&p| self.procs[p].parent).take(MAX_DEPTH)
    }

    /// Whether two processes are parts of one piece of work: the same process, one started
    /// (directly or not) by the other, or two children of one program (a pipeline's stages;
    /// commands of one shell, a `$(...)` or `( )` subshell being part of its shell).
    pub fn related(&self, a: usize, b: usize) -> bool {
        a == b
            || self.chain(a).any(|p| p == b)
            || self.chain(b).any(|p| p == a)
            || self
                .program_parent(a)
                .is_some_and(|p| Some(p) == self.program_parent(b))
    }

    /// The nearest ancestor that ran a program of its own: forks that never exec'd (a shell's
    /// subshells) are their parent's program still.
    fn program_parent(&self, proc: usize) -> Option<usize> {
        self.chain(proc).find(|&p| !self.procs[p].images.is_empty())
    }
}

/// The first words of an argv, each cut (on a character boundary) to a bounded length.
fn head_of(argv: &[String]) -> Vec<String> {
    argv.iter()
        .take(KEPT_ARGS)
        .map(|a| match a.char_indices().nth(KEPT_ARG_CHARS) {
            Some((cut, _)) => a[..cut].to_string(),
            None => a.clone(),
        })
        .collect()
}
