//! The process tree as a picture: one box per process lifetime, drawn as an indented tree (one
//! row per process in the order they started, children to the right of their parent, joined
//! by elbows). A process that owns evidence is coloured by its worst finding; an exec the gate
//! refused hangs under the process that tried it, dashed red.
use std::{collections::HashMap, fmt::Write as _};

use warden_records::{
    events::{
        Event, ExecRequest, Exit, Verdict,
        render::{command_line, signal_name},
    },
    process_tree::ProcessTree,
};

use super::{Page, escape::text, more_not_shown, titled};
use crate::finding::Severity;

/// Most processes drawn (those with evidence first).
const MAX_PROCESSES: usize = 400;
/// Most refused execs drawn under one process.
const MAX_REFUSED: usize = 3;
const ROW_H: usize = 46;
const BOX_H: usize = 38;
const BOX_W: usize = 520;
const INDENT: usize = 28;
const PAD: usize = 12;
/// Characters that fit in a box: a program's name (bold) and a command (monospace).
const PROGRAM_MAX: usize = 28;
const COMMAND_MAX: usize = 70;
/// Most images of one process listed on hover.
const MAX_IMAGES: usize = 20;

/// What the records say of each lifetime (by node index) beyond the tree itself.
struct Marks<'a> {
    worst: Vec<Option<Severity>>,
    /// The findings (report indices) it owns evidence of.
    findings: Vec<Vec<usize>>,
    /// Its execs the gate refused, with their seqs.
    refused: Vec<Vec<(u64, &'a ExecRequest)>>,
    /// An image the kernel killed before its first instruction (not what the gate approved).
    killed: Vec<bool>,
    /// Refused execs of processes the tree does not know.
    unowned: u64,
}

/// One row of the picture.
enum Row<'a> {
    Process(usize),
    Refused(u64, &'a ExecRequest),
    /// How many more refused execs the process has than are drawn.
    MoreRefused(usize),
}

struct Placed<'a> {
    row: Row<'a>,
    depth: usize,
    /// The row of the process it hangs under.
    parent: Option<usize>,
}

pub fn section(page: &Page) -> String {
    let tree = ProcessTree::build(page.records);
    if tree.nodes.is_empty() {
        return titled(
            "processes",
            "Processes",
            "The log has no fork, exec or exit records.",
            "",
        );
    }
    let marks = marks(page, &tree);
    let shown = choose(&tree, &marks);
    let drawn = shown.iter().filter(|&&s| s).count();
    let rows = layout(&tree, &marks, &shown);
    let mut body = format!(
        "<div class=\"picture\">{}</div>",
        draw(page, &tree, &marks, &rows)
    );
    body.push_str(LEGEND);
    body.push_str(&more_not_shown(
        (tree.nodes.len() - drawn) as u64,
        "processes",
    ));
    if marks.unowned > 0 {
        let _ = write!(
            body,
            "<p class=\"more\">{} refused by processes the tree does not know (see Refusals)</p>",
            super::plural(marks.unowned, "exec", "execs")
        );
    }
    titled(
        "processes",
        "Processes",
        &format!(
            "{} in the session, from fork, exec and exit records. Coloured: the process owns \
             evidence of a finding. Hover a box for its images and findings.",
            super::plural(tree.nodes.len() as u64, "process", "processes")
        ),
        &body,
    )
}

/// The lifetime of `pid` that a record at `seq` belongs to: the latest opened before it (pids
/// are reused), or the first when the record came before any (events of a new process can
/// reach the log before its fork).
fn owner(
    lifetimes: &HashMap<u32, Vec<usize>>,
    tree: &ProcessTree,
    pid: u32,
    seq: u64,
) -> Option<usize> {
    let nodes = lifetimes.get(&pid)?;
    nodes
        .iter()
        .rev()
        .find(|&&i| tree.nodes[i].opened_at <= seq)
        .or(nodes.first())
        .copied()
}

fn marks<'a>(page: &Page<'a>, tree: &ProcessTree) -> Marks<'a> {
    let n = tree.nodes.len();
    let mut lifetimes: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, node) in tree.nodes.iter().enumerate() {
        lifetimes.entry(node.pid).or_default().push(i);
    }
    let mut m = Marks {
        worst: vec![None; n],
        findings: vec![Vec::new(); n],
        refused: vec![Vec::new(); n],
        killed: vec![false; n],
        unowned: 0,
    };
    for r in page.records {
        let Some(pid) = r.event.pid() else { continue };
        let refused = match &r.event {
            Event::ExecRequest(x) if x.verdict == Verdict::Deny => Some(x),
            _ => None,
        };
        let killed = matches!(&r.event, Event::Exec(x) if x.killed_for_token.is_some());
        let found: Vec<usize> = page.evidence.of(r.seq).collect();
        if refused.is_none() && !killed && found.is_empty() {
            continue;
        }
        let Some(node) = owner(&lifetimes, tree, pid, r.seq) else {
            m.unowned += u64::from(refused.is_some());
            continue;
        };
        for f in found {
            if !m.findings[node].contains(&f) {
                m.findings[node].push(f);
            }
            m.worst[node] = m.worst[node].max(Some(page.report.findings[f].severity));
        }
        if let Some(x) = refused {
            m.refused[node].push((r.seq, x));
        }
        m.killed[node] |= killed;
    }
    m
}

/// The processes drawn: all when they fit; else those with evidence (most severe first) or
/// refused execs, with their ancestors, then the others in tree order. A drawn process's
/// parent is always drawn.
fn choose(tree: &ProcessTree, marks: &Marks) -> Vec<bool> {
    let n = tree.nodes.len();
    if n <= MAX_PROCESSES {
        return vec![true; n];
    }
    let mut shown = vec![false; n];
    let mut count = 0;
    let mut marked: Vec<usize> = (0..n)
        .filter(|&i| marks.worst[i].is_some() || !marks.refused[i].is_empty() || marks.killed[i])
        .collect();
    marked.sort_by_key(|&i| std::cmp::Reverse(marks.worst[i]));
    for i in marked {
        let mut path = Vec::new();
        let mut at = Some(i);
        while let Some(j) = at.filter(|&j| !shown[j]) {
            path.push(j);
            at = tree.nodes[j].parent;
        }
        if count + path.len() > MAX_PROCESSES {
            break;
        }
        count += path.len();
        for j in path {
            shown[j] = true;
        }
    }
    for i in preorder(tree) {
        if count >= MAX_PROCESSES {
            break;
        }
        if !shown[i] && tree.nodes[i].parent.is_none_or(|p| shown[p]) {
            shown[i] = true;
            count += 1;
        }
    }
    shown
}

/// Node indices, each before its children, roots and siblings in the order they started.
fn preorder(tree: &ProcessTree) -> Vec<usize> {
    let mut out = Vec::with_capacity(tree.nodes.len());
    let mut stack: Vec<usize> = tree.roots.iter().rev().copied().collect();
    while let Some(i) = stack.pop() {
        out.push(i);
        stack.extend(tree.nodes[i].children.iter().rev());
    }
    out
}

/// The rows in drawing order: each process, its refused execs, then its children.
fn layout<'a>(tree: &ProcessTree, marks: &Marks<'a>, shown: &[bool]) -> Vec<Placed<'a>> {
    let mut rows = Vec::new();
    let mut stack: Vec<(usize, usize, Option<usize>)> = tree
        .roots
        .iter()
        .rev()
        .filter(|&&i| shown[i])
        .map(|&i| (i, 0, None))
        .collect();
    while let Some((i, depth, parent)) = stack.pop() {
        rows.push(Placed {
            row: Row::Process(i),
            depth,
            parent,
        });
        let me = Some(rows.len() - 1);
        let refused = &marks.refused[i];
        for &(seq, x) in refused.iter().take(MAX_REFUSED) {
            rows.push(Placed {
                row: Row::Refused(seq, x),
                depth: depth + 1,
                parent: me,
            });
        }
        if refused.len() > MAX_REFUSED {
            rows.push(Placed {
                row: Row::MoreRefused(refused.len() - MAX_REFUSED),
                depth: depth + 1,
                parent: None,
            });
        }
        for &c in tree.nodes[i].children.iter().rev().filter(|&&c| shown[c]) {
            stack.push((c, depth + 1, me));
        }
    }
    rows
}

fn draw(page: &Page, tree: &ProcessTree, marks: &Marks, rows: &[Placed]) -> String {
    let depth = rows.iter().map(|p| p.depth).max().unwrap_or(0);
    let width = 2 * PAD + depth * INDENT + BOX_W;
    let height = 2 * PAD + rows.len() * ROW_H - (ROW_H - BOX_H);
    let mut svg = format!(
        "<svg class=\"tree\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} \
         {height}\" role=\"img\" aria-label=\"process tree\">"
    );
    for (k, p) in rows.iter().enumerate() {
        if let Some(parent) = p.parent {
            let px = PAD + rows[parent].depth * INDENT + 14;
            let py = PAD + parent * ROW_H + BOX_H;
            let (x, y) = (PAD + p.depth * INDENT, PAD + k * ROW_H + BOX_H / 2);
            let class = if matches!(p.row, Row::Process(_)) {
                "edge"
            } else {
                "edge refused"
            };
            let _ = write!(svg, "<path class=\"{class}\" d=\"M{px} {py}V{y}H{x}\"/>");
        }
    }
    for (k, p) in rows.iter().enumerate() {
        let (x, y) = (PAD + p.depth * INDENT, PAD + k * ROW_H);
        svg.push_str(&match p.row {
            Row::Process(i) => process_box(page, tree, marks, i, x, y),
            Row::Refused(seq, req) => refused_box(page, seq, req, x, y),
            Row::MoreRefused(n) => format!(
                "<text class=\"note\" x=\"{}\" y=\"{}\">and {} more refused</text>",
                x + 10,
                y + BOX_H / 2 + 4,
                n
            ),
        });
    }
    svg.push_str("</svg>");
    svg
}

/// A process: its program and pid, how it ended, its command; coloured by its worst finding.
fn process_box(
    page: &Page,
    tree: &ProcessTree,
    marks: &Marks,
    i: usize,
    x: usize,
    y: usize,
) -> String {
    let node = &tree.nodes[i];
    let command = node
        .execs
        .last()
        .map(|(_, argv)| command_line(argv))
        .unwrap_or_default();
    let class = match marks.worst[i] {
        Some(s) => format!("proc ev {}", s.as_str()),
        None => "proc".to_string(),
    };
    format!(
        "<g class=\"{class}\"><title>{}</title>\
         <rect class=\"frame\" x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"5\"/>\
         <rect class=\"bar\" x=\"{x}\" y=\"{y}\" width=\"5\" height=\"{BOX_H}\" rx=\"2\"/>\
         <text x=\"{}\" y=\"{}\"><tspan class=\"prog\">{}</tspan>\
         <tspan class=\"pid\"> pid {} &#183; {}</tspan></text>{}\
         <text class=\"mono cmd\" x=\"{}\" y=\"{}\">{}</text></g>",
        tooltip(page, tree, marks, i),
        x + 12,
        y + 16,
        text(&program(tree, i), PROGRAM_MAX),
        node.pid,
        status(node.exit.as_ref(), marks.killed[i]),
        severity_label(marks.worst[i], x, y),
        x + 12,
        y + 31,
        text(&command, COMMAND_MAX)
    )
}

/// How a lifetime ended (HTML).
fn status(exit: Option<&Exit>, killed: bool) -> String {
    match exit {
        _ if killed => "<tspan class=\"deny\">killed: exec not approved</tspan>".into(),
        Some(e) => match (e.exit_code, e.signal) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(s)) => format!("killed by {}", signal_name(s)),
            (None, None) => "exited".into(),
        },
        None => "no exit seen".into(),
    }
}

/// What a box says on hover, a line each: the pid, its images, the findings it owns evidence
/// of.
fn tooltip(page: &Page, tree: &ProcessTree, marks: &Marks, i: usize) -> String {
    let node = &tree.nodes[i];
    let mut lines = vec![format!("pid {} (parent {})", node.pid, node.ppid)];
    lines.extend(
        node.execs
            .iter()
            .take(MAX_IMAGES)
            .map(|(_, argv)| format!("exec {}", text(&command_line(argv), 300))),
    );
    if node.execs.len() > MAX_IMAGES {
        lines.push(format!("and {} more images", node.execs.len() - MAX_IMAGES));
    }
    let findings: Vec<String> = marks.findings[i]
        .iter()
        .map(|&f| text(&page.report.findings[f].detection, 60))
        .collect();
    if !findings.is_empty() {
        lines.push(format!("evidence of {}", findings.join(", ")));
    }
    lines.join("\n")
}

/// The severity's name at the box's top right (nothing without one).
fn severity_label(sev: Option<Severity>, x: usize, y: usize) -> String {
    sev.map(|s| {
        format!(
            "<text class=\"sev {}\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            s.as_str(),
            x + BOX_W - 10,
            y + 16,
            s.as_str().to_uppercase()
        )
    })
    .unwrap_or_default()
}

/// An exec the gate refused, under the process that tried it.
fn refused_box(page: &Page, seq: u64, req: &ExecRequest, x: usize, y: usize) -> String {
    let why = req.rule.as_deref().or(req.reason.as_deref()).unwrap_or("");
    let command = command_line(&req.argv);
    format!(
        "<g class=\"refused\"><title>refused: {}\nby {}</title>\
         <rect class=\"frame\" x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"5\"/>\
         <text x=\"{}\" y=\"{}\"><tspan class=\"deny\">&#10007; exec refused</tspan>\
         <tspan class=\"pid\"> {} {}</tspan></text>{}\
         <text class=\"mono cmd\" x=\"{}\" y=\"{}\">{}</text></g>",
        text(&command, 300),
        text(why, 300),
        x + 12,
        y + 16,
        page.anchors.link(seq, &format!("seq {seq}")),
        text(why, 40),
        severity_label(page.evidence.worst(seq), x, y),
        x + 12,
        y + 31,
        text(&command, COMMAND_MAX)
    )
}

/// The name of the program a lifetime ran last, or the image it forked from.
fn program(tree: &ProcessTree, i: usize) -> String {
    let base = |f: &str| f.rsplit('/').next().unwrap_or(f).to_string();
    if let Some((f, _)) = tree.nodes[i].execs.last() {
        return base(f);
    }
    let mut up = tree.nodes[i].parent;
    while let Some(p) = up {
        if let Some((f, _)) = tree.nodes[p].execs.last() {
            return format!("(fork of {})", base(f));
        }
        up = tree.nodes[p].parent;
    }
    "(fork)".into()
}

const LEGEND: &str = "<div class=\"legend\"><span>A process's colour is the worst finding it \
    owns evidence of:</span><span><i class=\"critical\"></i>critical</span>\
    <span><i class=\"high\"></i>high</span><span><i class=\"medium\"></i>medium</span>\
    <span><i class=\"low\"></i>low</span><span><i class=\"refused\"></i>an exec the gate \
    refused</span></div>";
