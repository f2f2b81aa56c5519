//! What the session reached and touched, as bounded tables: DNS lookups and connections by
//! destination, files written, files read outside the workspace, and the refusals. Alike
//! records are one row with their count; rows that are evidence come first, coloured by their
//! worst finding.
use std::{collections::HashMap, fmt::Write as _, hash::Hash};

use warden_records::events::{Event, FileAccess, Record, Verdict, render};

use super::{Page, escape::text, more_not_shown, plural, thousands, titled};
use crate::{
    detections::{denied_target, read_path, written_paths},
    finding::Severity,
};

/// Most rows of one table.
const MAX_ROWS: usize = 100;
/// Most characters of a path or a name in a cell.
const PATH_MAX: usize = 240;

/// Alike records (lookups, connects, file calls: `T`), folded into one row that shows the
/// first of them.
struct Group<'a, T> {
    first: &'a T,
    first_seq: u64,
    count: u64,
    worst: Option<Severity>,
}

/// Records grouped by `key`, in the order a reader wants them: evidence first (most severe
/// first), then those `first` says come first, then by when they started.
struct Groups<'a, K, T> {
    map: HashMap<K, Group<'a, T>>,
}

impl<'a, K: Hash + Eq, T> Groups<'a, K, T> {
    fn new() -> Self {
        Groups {
            map: HashMap::new(),
        }
    }

    fn add(&mut self, page: &Page, key: K, seq: u64, item: &'a T, count: u64) {
        let g = self.map.entry(key).or_insert(Group {
            first: item,
            first_seq: seq,
            count: 0,
            worst: None,
        });
        g.count += count;
        g.worst = g.worst.max(page.evidence.worst(seq));
    }

    fn ordered(self, first: impl Fn(&K) -> bool) -> Vec<(K, Group<'a, T>)> {
        let mut v: Vec<(K, Group<T>)> = self.map.into_iter().collect();
        v.sort_by_key(|(k, g)| (std::cmp::Reverse(g.worst), !first(k), g.first_seq));
        v
    }
}

/// A table of the first `MAX_ROWS` rows and a line for the rest; `cells` renders a row's
/// `<td>`s.
fn table<T>(
    columns: &[&str],
    rows: &[T],
    worst: impl Fn(&T) -> Option<Severity>,
    cells: impl Fn(&T) -> String,
    what: &str,
) -> String {
    if rows.is_empty() {
        return format!("<p class=\"more\">No {what}.</p>");
    }
    let mut out = String::from("<div class=\"scroll\"><table><thead><tr>");
    for c in columns {
        let _ = write!(out, "<th>{c}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows.iter().take(MAX_ROWS) {
        let class = worst(row)
            .map(|s| format!(" class=\"ev {}\"", s.as_str()))
            .unwrap_or_default();
        let _ = write!(out, "<tr{class}>{}</tr>", cells(row));
    }
    out.push_str("</tbody></table></div>");
    out.push_str(&more_not_shown(
        rows.len().saturating_sub(MAX_ROWS) as u64,
        what,
    ));
    out
}

fn verdict(v: Verdict) -> String {
    let class = if v == Verdict::Deny { "deny" } else { "allow" };
    format!("<span class=\"{class}\">{}</span>", v.as_str())
}

/// The first record's seq, linked when the page shows it.
fn first_seq<T>(page: &Page, g: &Group<T>) -> String {
    page.anchors.link(g.first_seq, &g.first_seq.to_string())
}

pub fn network(page: &Page) -> String {
    let body = format!(
        "<h4>DNS lookups</h4>{}<h4>Connections</h4>{}",
        dns(page),
        connects(page)
    );
    titled(
        "network",
        "Network",
        "Lookups by name and connections by destination, as the proxy and the kernel decided \
         them; refused ones first after evidence.",
        &body,
    )
}

fn dns(page: &Page) -> String {
    let mut groups = Groups::new();
    for r in page.records {
        if let Event::DnsQuery(q) = &r.event {
            groups.add(
                page,
                (q.name.as_str(), q.qtype.as_str(), q.verdict),
                r.seq,
                q.as_ref(),
                1,
            );
        }
    }
    let rows = groups.ordered(|(_, _, v)| *v == Verdict::Deny);
    table(
        &[
            "name",
            "type",
            "verdict",
            "rule",
            "answer",
            "lookups",
            "first seq",
        ],
        &rows,
        |(_, g)| g.worst,
        |((name, qtype, v), g)| {
            let q = g.first;
            let mut answer = q.rcode.clone();
            if !q.answers.is_empty() {
                answer = format!("{answer} {}", q.answers.join(", "));
            }
            if let Some(b) = &q.budget {
                answer = format!("{answer} (over budget: {b})");
            }
            format!(
                "<td class=\"path\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td>",
                text(name, PATH_MAX),
                text(qtype, 16),
                verdict(*v),
                text(&q.rule, 80),
                text(&answer, PATH_MAX),
                thousands(g.count),
                first_seq(page, g)
            )
        },
        "lookups",
    )
}

fn connects(page: &Page) -> String {
    let mut groups = Groups::new();
    for r in page.records {
        if let Event::NetConnect(n) | Event::NetSend(n) = &r.event {
            let key = (
                r.event.kind(),
                n.transport.as_str(),
                n.address.as_str(),
                n.port,
                n.verdict,
                n.domain.as_deref(),
            );
            groups.add(page, key, r.seq, n, n.count.max(1));
        }
    }
    let rows = groups.ordered(|k| k.4 == Verdict::Deny);
    table(
        &[
            "destination",
            "call",
            "verdict",
            "rule",
            "calls",
            "first seq",
        ],
        &rows,
        |(_, g)| g.worst,
        |((kind, transport, address, port, v, domain), g)| {
            let host = if address.contains(':') {
                format!("[{address}]:{port}")
            } else {
                format!("{address}:{port}")
            };
            let domain = domain
                .map(|d| format!(" <span class=\"mute\">({})</span>", text(d, PATH_MAX)))
                .unwrap_or_default();
            format!(
                "<td class=\"path\">{}{domain}</td><td>{} {}</td><td>{}</td><td>{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td>",
                text(&host, 80),
                kind,
                text(transport, 16),
                verdict(*v),
                text(&g.first.rule, 80),
                thousands(g.count),
                first_seq(page, g)
            )
        },
        "destinations",
    )
}

/// The workspace and the home of the session, as `session.start` records them.
fn places<'a>(page: &Page<'a>) -> (&'a str, &'a str) {
    page.records
        .iter()
        .find_map(|r| match &r.event {
            Event::SessionStart(s) => Some((s.workspace.as_str(), s.home.as_str())),
            _ => None,
        })
        .unwrap_or_default()
}

/// `path` is `dir` or beneath it.
fn beneath(path: &str, dir: &str) -> bool {
    !dir.is_empty()
        && path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

pub fn files(page: &Page) -> String {
    let (workspace, home) = places(page);
    let body = format!(
        "<h4>Written</h4>{}<h4>Read outside the workspace</h4>{}",
        writes(page, workspace),
        reads(page, workspace, home)
    );
    titled(
        "files",
        "Files",
        &format!(
            "Writes (opens for writing, truncates, renames, links, removals) anywhere, those \
             outside the workspace <code>{}</code> first; reads outside it, system libraries \
             and relative paths left out.",
            text(workspace, PATH_MAX)
        ),
        &body,
    )
}

/// A file call as the table's key: kind, paths, flags, result.
type FileKey<'a> = (
    &'static str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
);

fn file_key<'a>(kind: &'static str, f: &'a FileAccess) -> FileKey<'a> {
    (
        kind,
        &f.path,
        f.path2.as_deref(),
        f.flags.as_deref(),
        &f.result,
    )
}

fn writes(page: &Page, workspace: &str) -> String {
    let mut groups = Groups::new();
    for r in page.records {
        if let Some(f) = r.event.file_access()
            && !written_paths(&r.event).is_empty()
        {
            groups.add(page, file_key(r.event.kind(), f), r.seq, f, f.count.max(1));
        }
    }
    let outside =
        |k: &FileKey| !beneath(k.1, workspace) || k.2.is_some_and(|p2| !beneath(p2, workspace));
    let rows = groups.ordered(outside);
    table(
        &["path", "call", "result", "calls", "first seq"],
        &rows,
        |(_, g)| g.worst,
        |(k, g)| file_cells(page, k, g, outside(k).then_some("outside the workspace")),
        "written files",
    )
}

fn reads(page: &Page, workspace: &str, home: &str) -> String {
    /// Read by every program that starts, or not files at all.
    const SYSTEM: &[&str] = &[
        "/usr/",
        "/lib/",
        "/lib64/",
        "/bin/",
        "/sbin/",
        "/etc/ld.so.",
        "/proc/self/",
        "/sys/",
        "/dev/null",
        "/dev/urandom",
        "/dev/tty",
    ];
    let mut groups = Groups::new();
    for r in page.records {
        let (Some(path), Some(f)) = (read_path(&r.event), r.event.file_access()) else {
            continue;
        };
        // A relative path is resolved against a directory the log does not say.
        if path.starts_with('/')
            && !beneath(path, workspace)
            && !SYSTEM.iter().any(|s| path.starts_with(s))
        {
            groups.add(page, file_key(r.event.kind(), f), r.seq, f, f.count.max(1));
        }
    }
    let rows = groups.ordered(|k| beneath(k.1, home));
    table(
        &["path", "call", "result", "calls", "first seq"],
        &rows,
        |(_, g)| g.worst,
        |(k, g)| file_cells(page, k, g, beneath(k.1, home).then_some("in home")),
        "files read",
    )
}

fn file_cells(page: &Page, k: &FileKey, g: &Group<FileAccess>, tag: Option<&str>) -> String {
    let (kind, path, path2, flags, result) = *k;
    let mut shown = text(path, PATH_MAX);
    if let Some(p2) = path2 {
        let _ = write!(shown, " &rarr; {}", text(p2, PATH_MAX));
    }
    if let Some(tag) = tag {
        let _ = write!(shown, "<span class=\"tag\">{tag}</span>");
    }
    let refused = matches!(result, "EACCES" | "EPERM");
    format!(
        "<td class=\"path\">{shown}</td><td>{kind} {}</td><td{}>{}</td><td class=\"n\">{}</td>\
         <td class=\"n\">{}</td>",
        text(flags.unwrap_or(""), 80),
        if refused { " class=\"deny\"" } else { "" },
        text(result, 24),
        thousands(g.count),
        first_seq(page, g)
    )
}

pub fn refusals(page: &Page) -> String {
    let denied: Vec<&Record> = page
        .records
        .iter()
        .filter(|r| denied_target(&r.event).is_some())
        .collect();
    let body = table(
        &["seq", "time", "kind", "record"],
        &denied,
        |r| page.evidence.worst(r.seq),
        |r| {
            format!(
                "<td class=\"n\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td>\
                 <td class=\"path\">{}</td>",
                page.anchors.link(r.seq, &r.seq.to_string()),
                text(r.time.get(11..23).unwrap_or(&r.time), 40),
                r.event.kind(),
                text(&render::details(r), 400)
            )
        },
        "refusals",
    );
    titled(
        "refusals",
        "Refusals",
        &format!(
            "{} by any layer (seccomp, Landlock, the LSM, the exec gate, the network and DNS \
             policy, approvals), in log order.",
            plural(denied.len() as u64, "call refused", "calls refused")
        ),
        &body,
    )
}
