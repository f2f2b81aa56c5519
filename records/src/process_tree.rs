//! Rebuilds a session's process tree from its records (fork, exec, exit).
//!
//! Pids can be reused within a long session, so a node is one lifetime of a pid: a fork (or
//! the first exec seen) opens it and the exit closes it.
use std::collections::HashMap;

use crate::events::{
    Event, Exit, Record,
    escape::for_terminal,
    render::{command_line, signal_name},
};

#[derive(Clone, Debug, Default)]
pub struct Node {
    pub pid: u32,
    pub ppid: u32,
    /// The seq of the record that opened this lifetime: a record of the pid belongs to the
    /// latest lifetime opened before it.
    pub opened_at: u64,
    /// Index of the parent node, when the parent is part of the session.
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    /// Program images in order: (filename, argv).
    pub execs: Vec<(String, Vec<String>)>,
    pub exit: Option<Exit>,
}

#[derive(Debug, Default)]
pub struct ProcessTree {
    pub nodes: Vec<Node>,
    pub roots: Vec<usize>,
}

impl ProcessTree {
    pub fn build<'a>(records: impl IntoIterator<Item = &'a Record>) -> Self {
        let mut tree = ProcessTree::default();
        let mut live: HashMap<u32, usize> = HashMap::new();
        for rec in records {
            match &rec.event {
                Event::Fork(f) => {
                    tree.open(&mut live, f.pid, f.ppid, rec.seq);
                }
                Event::Exec(e) => {
                    let idx = match live.get(&e.pid) {
                        Some(&i) => i,
                        None => tree.open(&mut live, e.pid, e.ppid, rec.seq),
                    };
                    tree.nodes[idx]
                        .execs
                        .push((e.filename.clone(), e.argv.clone()));
                }
                Event::Exit(x) => {
                    let idx = match live.remove(&x.pid) {
                        Some(i) => i,
                        None => {
                            let i = tree.open(&mut live, x.pid, x.ppid, rec.seq);
                            live.remove(&x.pid);
                            i
                        }
                    };
                    tree.nodes[idx].exit = Some(x.clone());
                }
                _ => {}
            }
        }
        tree
    }

    fn open(&mut self, live: &mut HashMap<u32, usize>, pid: u32, ppid: u32, seq: u64) -> usize {
        let idx = self.nodes.len();
        let parent = live.get(&ppid).copied();
        self.nodes.push(Node {
            pid,
            ppid,
            opened_at: seq,
            parent,
            ..Node::default()
        });
        match parent {
            Some(p) => self.nodes[p].children.push(idx),
            None => self.roots.push(idx),
        }
        live.insert(pid, idx);
        idx
    }

    /// Nodes whose latest image's file name ends with `/name` (or is `name`).
    pub fn find_by_program(&self, name: &str) -> Vec<&Node> {
        self.nodes
            .iter()
            .filter(|n| {
                n.execs
                    .iter()
                    .any(|(f, _)| f == name || f.rsplit('/').next() == Some(name))
            })
            .collect()
    }

    /// Pids from `idx`'s parent up to its root.
    pub fn ancestors(&self, mut idx: usize) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(p) = self.nodes[idx].parent {
            out.push(self.nodes[p].pid);
            idx = p;
        }
        out
    }

    pub fn index_of(&self, node: &Node) -> usize {
        self.nodes
            .iter()
            .position(|n| std::ptr::eq(n, node))
            .expect("node belongs to this tree")
    }

    fn label(&self, idx: usize) -> String {
        let n = &self.nodes[idx];
        let mut s = format!("[{}] ", n.pid);
        if n.execs.is_empty() {
            // A fork that did not exec still runs the nearest ancestor's image.
            let mut up = n.parent;
            let mut parent_image = String::from("?");
            while let Some(p) = up {
                if let Some((f, _)) = self.nodes[p].execs.last() {
                    parent_image = f.rsplit('/').next().unwrap_or(f).to_string();
                    break;
                }
                up = self.nodes[p].parent;
            }
            s.push_str(&format!("(fork of {})", for_terminal(&parent_image)));
        } else {
            let images: Vec<String> = n.execs.iter().map(|(_, argv)| command_line(argv)).collect();
            s.push_str(&images.join(" => "));
        }
        match &n.exit {
            Some(Exit {
                exit_code: Some(c), ..
            }) => s.push_str(&format!("  (exit {c})")),
            Some(Exit {
                signal: Some(sig), ..
            }) => s.push_str(&format!("  (killed by {})", signal_name(*sig))),
            Some(_) => {}
            None => s.push_str("  (no exit seen)"),
        }
        s
    }

    pub fn render(&self) -> String {
        self.render_from(&self.roots)
    }

    /// The subtrees below `tops` (node indices), each drawn from its top.
    pub fn render_from(&self, tops: &[usize]) -> String {
        let mut out = String::new();
        for &top in tops {
            out.push_str(&self.label(top));
            out.push('\n');
            self.render_children(top, "", &mut out);
        }
        out
    }

    /// `idx` and every node below it.
    pub fn subtree(&self, idx: usize) -> Vec<usize> {
        let mut out = vec![idx];
        let mut i = 0;
        while i < out.len() {
            out.extend(&self.nodes[out[i]].children);
            i += 1;
        }
        out
    }

    fn render_children(&self, idx: usize, prefix: &str, out: &mut String) {
        let children = &self.nodes[idx].children;
        for (i, &child) in children.iter().enumerate() {
            let last = i + 1 == children.len();
            out.push_str(prefix);
            out.push_str(if last { "└─ " } else { "├─ " });
            out.push_str(&self.label(child));
            out.push('\n');
            let deeper = format!("{prefix}{}", if last { "   " } else { "│  " });
            self.render_children(child, &deeper, out);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::events::{Exec, Fork};

    fn rec(seq: u64, event: Event) -> Record {
        Record {
            session: "s".into(),
            seq,
            time: String::new(),
            boot_ns: seq,
            prev_hash: String::new(),
            tool_call_id: None,
            event,
        }
    }

    /// An exec of `/bin/<argv[0]>`.
    fn exec(pid: u32, ppid: u32, argv: &[&str]) -> Event {
        Event::Exec(Exec {
            pid,
            ppid,
            filename: format!("/bin/{}", argv[0]),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            ..Exec::default()
        })
    }

    #[test]
    fn rebuilds_tree_and_handles_pid_reuse() {
        let records = [
            rec(0, exec(10, 1, &["sh", "-c", "x"])),
            rec(1, Event::Fork(Fork { pid: 11, ppid: 10 })),
            rec(2, exec(11, 10, &["ls", "/"])),
            rec(3, Event::Exit(Exit::from_wait_status(11, 10, 0))),
            // pid 11 reused by a new child of 10
            rec(4, Event::Fork(Fork { pid: 11, ppid: 10 })),
            rec(5, Event::Fork(Fork { pid: 12, ppid: 11 })),
            rec(6, exec(12, 11, &["sleep", "1"])),
        ];
        let tree = ProcessTree::build(&records);
        assert_eq!(tree.roots.len(), 1);
        assert_eq!(tree.nodes.len(), 4);
        let lifetimes: Vec<(u32, u64)> = tree.nodes.iter().map(|n| (n.pid, n.opened_at)).collect();
        assert_eq!(lifetimes, [(10, 0), (11, 1), (11, 4), (12, 5)]);
        let sleep = tree.find_by_program("sleep")[0];
        assert_eq!(tree.ancestors(tree.index_of(sleep)), [11, 10]);
        let text = tree.render();
        assert!(text.starts_with("[10] sh -c x  (no exit seen)\n"), "{text}");
        assert!(text.contains("├─ [11] ls /  (exit 0)"), "{text}");
        assert!(text.contains("└─ [11] (fork of sh)"), "{text}");
        assert!(text.contains("   └─ [12] sleep 1"), "{text}");
        let forks_only = ProcessTree::build(&records[..6]);
        assert!(
            forks_only.render().contains("[12] (fork of sh)"),
            "{}",
            forks_only.render()
        );
    }
}
