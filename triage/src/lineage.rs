//! Which process each record belongs to, and what ran that process, from the session's own
//! fork, exec and exit records: what correlating detections ask ("did a package manager start
//! this?", "are these two calls parts of one pipeline?").
//!
//! A process is one lifetime of a pid (pids are reused in long sessions): a fork, or the first
//! record of a pid, opens it and its exit closes it.
use std::collections::HashMap;

use warden_records::events::{Event, Record};

/// Ancestors looked at, at most: a chain deeper than this is not a task's process tree.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Default)]
pub struct Proc {
    pub pid: u32,
    pub parent: Option<usize>,
    /// The argv of each program image it ran, in order.
    pub images: Vec<Vec<String>>,
}

#[derive(Debug, Default)]
pub struct Lineage {
    pub procs: Vec<Proc>,
    /// The process of each record (by index in the records), when it is about one.
    of_record: Vec<Option<usize>>,
}

impl Lineage {
    /// From the records taken in `by_time` order (a file call logged after its process's
    /// exit still belongs to it).
    pub fn build(records: &[Record], by_time: &[usize]) -> Self {
        let mut l = Lineage {
            procs: Vec::new(),
            of_record: vec![None; records.len()],
        };
        let mut live: HashMap<u32, usize> = HashMap::new();
        for &i in by_time {
            let r = &records[i];
            let proc = match &r.event {
                Event::Fork(f) => {
                    let parent = live.get(&f.ppid).copied();
                    Some(l.open(&mut live, f.pid, parent))
                }
                Event::Exec(x) => {
                    let i = l.find_or_open(&mut live, x.pid, Some(x.ppid));
                    l.procs[i].images.push(x.argv.clone());
                    Some(i)
                }
                e => e.pid().map(|pid| {
                    let ppid = match e {
                        Event::Exit(x) => Some(x.ppid),
                        _ => None,
                    };
                    l.find_or_open(&mut live, pid, ppid)
                }),
            };
            if let Event::Exit(x) = &r.event {
                live.remove(&x.pid);
            }
            l.of_record[i] = proc;
        }
        l
    }

    fn open(&mut self, live: &mut HashMap<u32, usize>, pid: u32, parent: Option<usize>) -> usize {
        self.procs.push(Proc {
            pid,
            parent,
            images: Vec::new(),
        });
        let i = self.procs.len() - 1;
        live.insert(pid, i);
        i
    }

    fn find_or_open(
        &mut self,
        live: &mut HashMap<u32, usize>,
        pid: u32,
        ppid: Option<u32>,
    ) -> usize {
        match live.get(&pid) {
            Some(&i) => i,
            None => {
                let parent = ppid.and_then(|p| live.get(&p).copied());
                self.open(live, pid, parent)
            }
        }
    }

    /// The process of the record at `index`.
    pub fn of(&self, index: usize) -> Option<usize> {
        self.of_record.get(index).copied().flatten()
    }

    /// The process's ancestors, nearest first.
    pub fn ancestors(&self, proc: usize) -> impl Iterator<Item = &Proc> {
        std::iter::successors(self.procs[proc].parent, |&p| self.procs[p].parent)
            .take(MAX_DEPTH)
            .map(|p| &self.procs[p])
    }

    /// Whether two processes are parts of one piece of work: the same process, one started
    /// (directly or not) by the other, or two children of one parent (a pipeline's stages).
    pub fn related(&self, a: usize, b: usize) -> bool {
        let above = |x: usize, y: usize| {
            std::iter::successors(self.procs[x].parent, |&p| self.procs[p].parent)
                .take(MAX_DEPTH)
                .any(|p| p == y)
        };
        a == b
            || above(a, b)
            || above(b, a)
            || (self.procs[a].parent.is_some() && self.procs[a].parent == self.procs[b].parent)
    }
}
