//! `warden replay`: a recorded session for an incident responder. The process tree, a
//! timeline, the network and file activity of one process, filtered by process (and its
//! subtree), kind, decision and time; as text or JSON. (Verification and resending to a
//! collector are `verify` and `otlp::resend`.)
use std::{
    collections::{BTreeMap, HashSet},
    io::Write,
    time::Duration,
};

use anyhow::{Context as _, bail};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    events::{Event, Record, escape::for_terminal, render},
    otlp::mapping,
    process_tree::ProcessTree,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayView {
    /// The process tree (of `--pid`'s subtree, with `--pid`).
    Tree,
    /// One line per record, in order.
    Timeline,
    /// What the processes reached: connections, DNS names, files, with counts.
    Activity,
    /// The selected records as JSON lines.
    Json,
}

/// A point in the session: RFC 3339, or `+DURATION` after its first record (`+90s`, `+2m`,
/// `+1500ms`, `+1h`).
#[derive(Clone, Debug, PartialEq)]
pub enum TimeBound {
    At(OffsetDateTime),
    After(Duration),
}

impl std::str::FromStr for TimeBound {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(offset) = s.strip_prefix('+') {
            let split = offset
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(offset.len());
            let (n, unit) = offset.split_at(split);
            let n: u64 = n
                .parse()
                .map_err(|_| format!("`{s}`: expected +N followed by ms, s, m or h"))?;
            let d = match unit {
                "ms" => Duration::from_millis(n),
                "s" | "" => Duration::from_secs(n),
                "m" => Duration::from_secs(n * 60),
                "h" => Duration::from_secs(n * 3600),
                _ => return Err(format!("`{s}`: unknown unit `{unit}` (ms, s, m, h)")),
            };
            return Ok(Self::After(d));
        }
        OffsetDateTime::parse(s, &Rfc3339)
            .map(Self::At)
            .map_err(|e| format!("`{s}`: not RFC 3339 nor +DURATION: {e}"))
    }
}

/// Which records to show (the command line's filters).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Filter {
    /// Only this process's records (the subtree below it in --view tree).
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// With --pid: its descendants' records too.
    #[arg(long, requires = "pid")]
    pub subtree: bool,
    /// Only records of this kind, or family of kinds (`file` for every file.*, `exec` for
    /// exec and exec.request). Repeatable.
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,
    /// Only records carrying this decision: allow, deny, kill, redirect.
    #[arg(long, value_name = "VERDICT")]
    pub decision: Option<String>,
    /// From this time on: RFC 3339, or +DURATION after the session's start (+90s, +2m).
    #[arg(long, value_name = "TIME")]
    pub since: Option<TimeBound>,
    /// Up to this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<TimeBound>,
}

impl Filter {
    /// The records that pass, in log order.
    pub fn apply<'a>(&self, records: &'a [Record]) -> anyhow::Result<Vec<&'a Record>> {
        let pids = self.pids(records)?;
        let start = records.first().map_or(0, |r| r.boot_ns);
        let within = |r: &Record, bound: &TimeBound, after: bool| -> bool {
            match bound {
                TimeBound::After(d) => {
                    let at = start.saturating_add(d.as_nanos() as u64);
                    if after {
                        r.boot_ns >= at
                    } else {
                        r.boot_ns <= at
                    }
                }
                TimeBound::At(t) => match OffsetDateTime::parse(&r.time, &Rfc3339) {
                    Ok(rt) => {
                        if after {
                            rt >= *t
                        } else {
                            rt <= *t
                        }
                    }
                    Err(_) => false,
                },
            }
        };
        Ok(records
            .iter()
            .filter(|r| match &pids {
                Some(set) => r.event.pid().is_some_and(|p| set.contains(&p)),
                None => true,
            })
            .filter(|r| {
                self.kinds.is_empty()
                    || self.kinds.iter().any(|k| {
                        let kind = r.event.kind();
                        kind == k
                            || kind
                                .strip_prefix(k.as_str())
                                .is_some_and(|rest| rest.starts_with('.'))
                    })
            })
            .filter(|r| match &self.decision {
                Some(d) => mapping::map(r).get_str("warden.decision") == Some(d.as_str()),
                None => true,
            })
            .filter(|r| self.since.as_ref().is_none_or(|b| within(r, b, true)))
            .filter(|r| self.until.as_ref().is_none_or(|b| within(r, b, false)))
            .collect())
    }

    fn pids(&self, records: &[Record]) -> anyhow::Result<Option<HashSet<u32>>> {
        let Some(pid) = self.pid else {
            return Ok(None);
        };
        if !self.subtree {
            return Ok(Some(HashSet::from([pid])));
        }
        let tree = ProcessTree::build(records);
        let tops: Vec<usize> = (0..tree.nodes.len())
            .filter(|&i| tree.nodes[i].pid == pid)
            .collect();
        if tops.is_empty() {
            bail!("no process {pid} in this session");
        }
        Ok(Some(
            tops.iter()
                .flat_map(|&t| tree.subtree(t))
                .map(|i| tree.nodes[i].pid)
                .collect(),
        ))
    }
}

pub fn print(
    records: &[Record],
    filter: &Filter,
    view: ReplayView,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match view {
        ReplayView::Tree => {
            let tree = ProcessTree::build(records);
            let text = match filter.pid {
                Some(pid) => {
                    let tops: Vec<usize> = (0..tree.nodes.len())
                        .filter(|&i| tree.nodes[i].pid == pid)
                        .collect();
                    if tops.is_empty() {
                        bail!("no process {pid} in this session");
                    }
                    tree.render_from(&tops)
                }
                None => tree.render(),
            };
            write!(out, "{text}")?;
        }
        ReplayView::Timeline => {
            for r in filter.apply(records)? {
                writeln!(out, "{}", render::line(r))?;
            }
        }
        ReplayView::Json => {
            for r in filter.apply(records)? {
                serde_json::to_writer(&mut *out, r)?;
                writeln!(out)?;
            }
        }
        ReplayView::Activity => activity(&filter.apply(records)?, out)?,
    }
    Ok(())
}

/// Connections, DNS names and files of the selected records, each with how often.
fn activity(records: &[&Record], out: &mut impl Write) -> anyhow::Result<()> {
    let mut network: BTreeMap<String, u64> = BTreeMap::new();
    let mut dns: BTreeMap<String, u64> = BTreeMap::new();
    let mut files: BTreeMap<String, u64> = BTreeMap::new();
    for r in records {
        if let Some(f) = r.event.file_access() {
            let what = format!(
                "{} {}",
                r.event.kind().trim_start_matches("file."),
                render::file_call(f)
            );
            *files.entry(what).or_default() += f.count;
            continue;
        }
        match &r.event {
            Event::NetConnect(n) | Event::NetSend(n) => {
                let what = format!(
                    "{} {} {}:{} {}{}",
                    r.event.kind().trim_start_matches("network."),
                    n.transport,
                    n.address,
                    n.port,
                    serde_json::to_value(n.verdict)?
                        .as_str()
                        .unwrap_or_default(),
                    n.domain
                        .as_ref()
                        .map(|d| format!(" ({})", for_terminal(d)))
                        .unwrap_or_default()
                );
                *network.entry(what).or_default() += 1;
            }
            Event::DnsQuery(q) => {
                let what = format!(
                    "{} {} {}",
                    for_terminal(&q.name),
                    q.qtype,
                    serde_json::to_value(q.verdict)?
                        .as_str()
                        .unwrap_or_default()
                );
                *dns.entry(what).or_default() += 1;
            }
            _ => {}
        }
    }
    for (title, items) in [("network", &network), ("dns", &dns), ("files", &files)] {
        writeln!(
            out,
            "{title}: {}",
            if items.is_empty() { "none" } else { "" }
        )?;
        for (what, n) in items {
            writeln!(out, "  {what}  x{n}")?;
        }
    }
    Ok(())
}

/// Reads a log for replay, naming it in errors.
pub fn read(path: &std::path::Path) -> anyhow::Result<Vec<Record>> {
    crate::audit_log::read(path).with_context(|| "reading the log (try --verify)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Exit, FileAccess, Fork, Network, Verdict};

    /// An exec of `/bin/<argv[0]>`.
    fn exec(pid: u32, ppid: u32, argv: &[&str]) -> Event {
        Event::Exec(crate::events::Exec {
            pid,
            ppid,
            filename: format!("/bin/{}", argv[0]),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
    }

    fn rec(seq: u64, event: Event) -> Record {
        Record {
            session: "s".into(),
            seq,
            time: format!("2026-11-23T21:00:{:02}.000000000Z", seq),
            boot_ns: 1_000_000_000 * seq,
            prev_hash: String::new(),
            tool_call_id: None,
            event,
        }
    }

    fn file(pid: u32, path: &str) -> Event {
        Event::FileOpen(FileAccess {
            pid,
            path: path.into(),
            path_truncated: false,
            path_unreadable: false,
            dirfd: None,
            path2: None,
            path2_truncated: false,
            flags: Some("O_RDONLY".into()),
            result: "ok".into(),
            count: 2,
            last_boot_ns: None,
        })
    }

    fn session() -> Vec<Record> {
        vec![
            rec(0, exec(10, 1, &["sh"])),
            rec(1, Event::Fork(Fork { pid: 11, ppid: 10 })),
            rec(2, exec(11, 10, &["curl"])),
            rec(
                3,
                Event::NetConnect(Network {
                    pid: 11,
                    uid: 0,
                    transport: "tcp".into(),
                    address: "192.0.2.1".into(),
                    port: 443,
                    verdict: Verdict::Deny,
                    rule: "default-deny".into(),
                    rule_source: None,
                    domain: None,
                    count: 1,
                    last_boot_ns: None,
                }),
            ),
            rec(4, file(11, "/etc/hosts")),
            rec(5, Event::Exit(Exit::from_wait_status(11, 10, 0))),
            rec(6, file(10, "/etc/passwd")),
        ]
    }

    fn text(records: &[Record], filter: &Filter, view: ReplayView) -> String {
        let mut out = Vec::new();
        print(records, filter, view, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn seqs(records: &[Record], filter: &Filter) -> Vec<u64> {
        filter
            .apply(records)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect()
    }

    #[test]
    fn filters_by_process_kind_decision_and_time() {
        let s = session();
        let by_pid = Filter {
            pid: Some(10),
            ..Filter::default()
        };
        // A fork record is the child's.
        assert_eq!(seqs(&s, &by_pid), [0, 6]);
        let subtree = Filter {
            subtree: true,
            ..by_pid.clone()
        };
        assert_eq!(seqs(&s, &subtree), [0, 1, 2, 3, 4, 5, 6]);
        let files = Filter {
            kinds: vec!["file".into()],
            ..Filter::default()
        };
        assert_eq!(seqs(&s, &files), [4, 6]);
        let denied = Filter {
            decision: Some("deny".into()),
            ..Filter::default()
        };
        assert_eq!(seqs(&s, &denied), [3]);
        let window = Filter {
            since: Some("+2s".parse().unwrap()),
            until: Some("2026-11-23T21:00:04Z".parse().unwrap()),
            ..Filter::default()
        };
        assert_eq!(seqs(&s, &window), [2, 3, 4]);
        assert!("+3x".parse::<TimeBound>().is_err());
        assert!("yesterday".parse::<TimeBound>().is_err());
    }

    #[test]
    fn views() {
        let s = session();
        let tree = text(&s, &Filter::default(), ReplayView::Tree);
        assert_eq!(tree, ProcessTree::build(&s).render());
        let sub = text(
            &s,
            &Filter {
                pid: Some(11),
                ..Filter::default()
            },
            ReplayView::Tree,
        );
        assert!(sub.starts_with("[11] curl"), "{sub}");
        let act = text(
            &s,
            &Filter {
                pid: Some(11),
                ..Filter::default()
            },
            ReplayView::Activity,
        );
        assert!(act.contains("connect tcp 192.0.2.1:443 deny  x1"), "{act}");
        assert!(act.contains("open /etc/hosts O_RDONLY ok  x2"), "{act}");
        assert!(!act.contains("passwd"), "{act}");
        let json = text(&s, &Filter::default(), ReplayView::Json);
        let back: Vec<Record> = json
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, s);
    }
}
