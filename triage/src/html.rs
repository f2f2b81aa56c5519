//! The report as one HTML page for people: the session, the findings most severe first, the
//! process tree and a timeline as pictures, network and file activity, and the records that are
//! evidence with a few around them. Inline CSS and SVG only: no script and nothing fetched (a
//! Content-Security-Policy forbids both, should escaping ever fail), and bounded in size
//! however long the log.
mod activity;
mod escape;
mod records;
mod timeline;
mod tree;

use std::fmt::Write as _;

use warden_records::{
    events::{Event, Record, SessionEnd, SessionStart, render::command_line},
    verify,
};

use crate::{
    finding::{Finding, Severity},
    triage::Report,
};
use escape::text;
use records::{Anchors, Evidence, Excerpt};

/// Most characters of one value in the header.
const FIELD_MAX: usize = 300;
/// Most evidence ranges listed under one finding.
const RANGES_MAX: usize = 12;
/// Most chain problems listed in the header.
const PROBLEMS_MAX: usize = 5;

/// What the page draws from: the report, the records, which findings each record is evidence
/// of, and which records the page shows (so that a link is made only where its target is).
struct Page<'a> {
    report: &'a Report,
    records: &'a [Record],
    evidence: Evidence,
    anchors: Anchors,
}

/// The page for `report` of the session `records` (in log order), read from `log`. `chain` is
/// the log's hash-chain check (`warden_records::verify::verify`), or None when it was not
/// checked; the page says which.
pub fn html(
    report: &Report,
    records: &[Record],
    log: &str,
    chain: Option<&verify::Report>,
) -> String {
    let excerpt = Excerpt::choose(report, records);
    let page = Page {
        report,
        records,
        evidence: Evidence::new(&report.findings),
        anchors: excerpt.anchors(records),
    };
    let mut out = head(report);
    out.push_str(&header(&page, log, chain));
    out.push_str("<main>");
    out.push_str(&findings(&page));
    out.push_str(&tree::section(&page));
    out.push_str(&timeline::section(&page));
    out.push_str(&activity::network(&page));
    out.push_str(&activity::files(&page));
    out.push_str(&activity::refusals(&page));
    out.push_str(&excerpt.section(&page));
    out.push_str(
        "</main><footer>Written by <code>warden triage --html</code>. This page is \
         self-contained: it loads nothing and runs no script; every string from the log is \
         shown as text.</footer></body></html>\n",
    );
    out
}

fn head(report: &Report) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Warden triage: session {}</title><style>{CSS}</style></head><body>",
        text(&report.session, 80)
    )
}

/// A section of the page, with its heading and a line saying what it shows.
fn titled(id: &str, title: &str, about: &str, body: &str) -> String {
    format!("<section id=\"{id}\"><h2>{title}</h2><p class=\"about\">{about}</p>{body}</section>")
}

/// `n` with thousands separated: `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 record`, `2 records`.
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// The line that says how many rows a bounded table or list left out.
fn more_not_shown(n: u64, what: &str) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(
            "<p class=\"more\">{} more {what} not shown</p>",
            thousands(n)
        )
    }
}

/// The session at a glance: what ran, where, when, whether the log can be trusted, and how
/// many findings of each severity.
fn header(page: &Page, log: &str, chain: Option<&verify::Report>) -> String {
    let start = page.records.iter().find_map(|r| match &r.event {
        Event::SessionStart(s) => Some((r, s.as_ref())),
        _ => None,
    });
    let end = page.records.iter().rev().find_map(|r| match &r.event {
        Event::SessionEnd(e) => Some((r, e)),
        _ => None,
    });
    let mut fields = vec![
        ("Session", text(&page.report.session, FIELD_MAX)),
        ("Records", thousands(page.report.records)),
        ("Log", text(log, FIELD_MAX)),
    ];
    if let Some((_, s)) = start {
        fields.extend(started_fields(s));
    }
    fields.push((
        "Started",
        start
            .map(|(r, _)| wall(&r.time))
            .or_else(|| page.records.first().map(|r| wall(&r.time)))
            .unwrap_or_default(),
    ));
    fields.push(("Ended", ended(page, end)));
    let mut grid = String::new();
    for (name, value) in fields {
        let _ = write!(grid, "<dt>{name}</dt><dd>{value}</dd>");
    }
    format!(
        "<header class=\"top\"><div class=\"wrap\"><h1>Warden triage</h1><dl>{grid}</dl>{}{}\
         </div>{}</header>",
        chain_status(chain),
        summary(&page.report.findings),
        NAV
    )
}

/// What `session.start` says: the command, the user, the workspace, the hook tier.
fn started_fields(s: &SessionStart) -> Vec<(&'static str, String)> {
    let mut command = text(&command_line(&s.command), FIELD_MAX);
    if s.command_truncated {
        command.push_str(" <span class=\"mute\">(truncated)</span>");
    }
    let mut hooks = text(&s.hook_tier, 40);
    if hooks.is_empty() {
        hooks = "<span class=\"mute\">not recorded</span>".into();
    }
    if !s.missing_layers.is_empty() {
        let _ = write!(
            hooks,
            " <span class=\"mute\">(missing layers: {})</span>",
            text(&s.missing_layers.join(", "), FIELD_MAX)
        );
    }
    vec![
        ("Command", format!("<code>{command}</code>")),
        (
            "User",
            format!(
                "{} (uid {}) on {}",
                text(&s.user, 64),
                s.uid,
                text(&s.hostname, 64)
            ),
        ),
        (
            "Workspace",
            format!("<code>{}</code>", text(&s.workspace, FIELD_MAX)),
        ),
        ("Hook tier", hooks),
        ("Warden", text(&s.warden_version, 40)),
    ]
}

/// When and how the session ended, or that the log does not say.
fn ended(page: &Page, end: Option<(&Record, &SessionEnd)>) -> String {
    match end {
        Some((r, e)) => format!(
            "{} <span class=\"mute\">({}, status {}, after {:.1}s)</span>",
            wall(&r.time),
            e.reason,
            e.status,
            e.duration_ms as f64 / 1000.0
        ),
        None => format!(
            "<span class=\"warn\">no session.end: the log stops at {}</span>",
            page.records
                .last()
                .map(|r| format!("{} (seq {})", wall(&r.time), r.seq))
                .unwrap_or_else(|| "its start".into())
        ),
    }
}

/// `2026-12-07 10:00:00 UTC` from a record's RFC 3339 time (as written when it is not one).
fn wall(t: &str) -> String {
    match (t.get(..10), t.get(10..11), t.get(11..19)) {
        (Some(date), Some("T"), Some(clock)) if t.ends_with('Z') => {
            format!("{} {} UTC", text(date, 10), text(clock, 8))
        }
        _ => text(t, 40),
    }
}

/// Whether the records can be trusted: the hash chain intact, damaged, or not checked.
fn chain_status(chain: Option<&verify::Report>) -> String {
    match chain {
        None => "<p class=\"chain unknown\">Hash chain not checked: the records were not \
                 verified against the log's chain (<code>warden replay LOG --verify</code>).</p>"
            .into(),
        Some(c) if c.intact() => format!(
            "<p class=\"chain ok\">&#10003; Hash chain intact: {} chained{}.</p>",
            plural(c.records, "record", "records"),
            if c.ended {
                ", ending with session.end"
            } else {
                "; the log has no session.end"
            }
        ),
        Some(c) => {
            let mut problems = String::new();
            for p in c.problems.iter().take(PROBLEMS_MAX) {
                let _ = write!(problems, "<li>{}</li>", text(&p.to_string(), FIELD_MAX));
            }
            format!(
                "<div class=\"chain bad\"><p>&#9888; Hash chain DAMAGED: the evidence below may \
                 have been changed.</p><ul>{problems}</ul>{}</div>",
                more_not_shown(
                    c.problems.len().saturating_sub(PROBLEMS_MAX) as u64,
                    "problems"
                )
            )
        }
    }
}

/// One pill per severity with the number of findings.
fn summary(findings: &[Finding]) -> String {
    let mut out = String::from("<p class=\"summary\">");
    for &s in Severity::ALL.iter().rev() {
        let n = findings.iter().filter(|f| f.severity == s).count();
        let _ = write!(
            out,
            "<a class=\"pill {}{}\" href=\"#findings\"><b>{n}</b> {}</a>",
            s.as_str(),
            if n == 0 { " none" } else { "" },
            s.as_str()
        );
    }
    out.push_str("</p>");
    out
}

/// The findings, most severe first (as the report holds them).
fn findings(page: &Page) -> String {
    let findings = &page.report.findings;
    let body = if findings.is_empty() {
        "<p class=\"clean\">No findings: no detection fired on this session.</p>".to_string()
    } else {
        findings
            .iter()
            .enumerate()
            .map(|(i, f)| finding(page, i, f))
            .collect()
    };
    titled(
        "findings",
        "Findings",
        "Most severe first. Each links to the records that are its evidence.",
        &body,
    )
}

fn finding(page: &Page, i: usize, f: &Finding) -> String {
    let techniques: String = f
        .techniques
        .iter()
        .map(|t| format!("<span class=\"tech\">{}</span>", text(t, 40)))
        .collect();
    format!(
        "<article class=\"finding {sev}\" id=\"finding-{i}\"><div class=\"fh\">\
         <span class=\"badge {sev}\">{sev}</span><h3>{id}</h3>\
         <span class=\"source\">{source}</span>{techniques}</div>\
         <p class=\"narrative\">{narrative}</p><p class=\"evidence\">{count} &middot; evidence: \
         {links}</p></article>",
        sev = f.severity.as_str(),
        id = text(&f.detection, 120),
        source = f.source.as_str(),
        narrative = text(&f.narrative, 600),
        count = plural(f.count, "call", "calls"),
        links = evidence_links(page, f),
    )
}

/// The finding's evidence ranges, each linked to its first record when the page shows it.
fn evidence_links(page: &Page, f: &Finding) -> String {
    let mut links: Vec<String> = f
        .evidence
        .iter()
        .take(RANGES_MAX)
        .map(|r| {
            let label = if r.first == r.last {
                format!("seq {}", r.first)
            } else {
                format!("seq {}&ndash;{}", r.first, r.last)
            };
            page.anchors.link(r.first, &label)
        })
        .collect();
    let more = f.evidence.len().saturating_sub(RANGES_MAX);
    if more > 0 {
        links.push(format!(
            "and {}",
            plural(more as u64, "more range", "more ranges")
        ));
    }
    links.join(", ")
}

/// Links to the sections, under the header.
const NAV: &str = "<nav><a href=\"#findings\">Findings</a><a href=\"#processes\">Processes</a>\
    <a href=\"#timeline\">Timeline</a><a href=\"#network\">Network</a><a href=\"#files\">Files</a>\
    <a href=\"#refusals\">Refusals</a><a href=\"#records\">Evidence records</a></nav>";

/// The severities' colours are written once, here; the pictures use the same variables.
const CSS: &str = r#"
:root{--critical:#9f1239;--high:#ea580c;--medium:#ca8a04;--low:#64748b;--ink:#0f172a;
--mute:#64748b;--line:#e2e8f0;--bg:#f1f5f9;--card:#fff;--ok:#15803d;--deny:#dc2626}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
code,.mono{font-family:ui-monospace,"SFMono-Regular","DejaVu Sans Mono",Menlo,Consolas,monospace;
font-size:12.5px}
a{color:#1d4ed8;text-decoration:none}a:hover{text-decoration:underline}
.wrap,main{max-width:1240px;margin:0 auto;padding:0 24px}
header.top{background:#0f172a;color:#e2e8f0;padding:20px 0 0}
header.top h1{margin:0 0 12px;font-size:22px;letter-spacing:.02em}
header.top code{color:#f8fafc}
header dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 18px;margin:0 0 12px}
header dt{color:#94a3b8}header dd{margin:0;overflow-wrap:anywhere}
.mute{color:var(--mute)}header .mute{color:#94a3b8}
.warn{color:#fbbf24}
.chain{margin:8px 0;padding:6px 12px;border-radius:6px}
.chain.ok{background:#14532d;color:#dcfce7}.chain.unknown{background:#334155;color:#e2e8f0}
.chain.bad{background:#7f1d1d;color:#fee2e2;font-weight:600}.chain.bad ul{margin:4px 0;font-weight:400}
.chain.bad p{margin:0}
.summary{display:flex;gap:10px;margin:12px 0 16px}
.pill{padding:4px 14px;border-radius:999px;color:#fff;background:var(--sev);font-weight:600}
.pill b{font-size:16px;margin-right:2px}.pill.none{opacity:.35}
.critical{--sev:var(--critical)}.high{--sev:var(--high)}.medium{--sev:var(--medium)}.low{--sev:var(--low)}
nav{background:#1e293b;display:flex;gap:4px;padding:0 24px;justify-content:center}
nav a{color:#cbd5e1;padding:8px 12px;font-size:13px}nav a:hover{color:#fff;background:#334155}
section{margin:28px 0}
h2{font-size:18px;margin:0 0 2px;border-bottom:2px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:0}
.about{color:var(--mute);margin:4px 0 12px}
.finding{background:var(--card);border:1px solid var(--line);border-left:6px solid var(--sev);
border-radius:6px;padding:10px 14px;margin:10px 0}
.finding:target{box-shadow:0 0 0 3px #93c5fd}
.fh{display:flex;flex-wrap:wrap;align-items:center;gap:8px}
.badge{background:var(--sev);color:#fff;font-weight:700;text-transform:uppercase;font-size:11px;
padding:2px 8px;border-radius:4px;letter-spacing:.05em}
.source{color:var(--mute);font-size:12px}
.tech{font:600 11px ui-monospace,monospace;background:#e0e7ff;color:#3730a3;padding:1px 6px;
border-radius:4px}
.narrative{margin:6px 0;overflow-wrap:anywhere}.evidence{margin:0;color:var(--mute);font-size:13px}
.clean{background:#dcfce7;color:#14532d;padding:10px 14px;border-radius:6px}
.picture{background:var(--card);border:1px solid var(--line);border-radius:6px;overflow:auto;
max-height:900px}
.picture svg{display:block}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
svg .mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace}
.legend{display:flex;flex-wrap:wrap;gap:14px;color:var(--mute);font-size:12px;margin:6px 0}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;
vertical-align:-1px;background:var(--sev)}
.legend i.refused{background:#fff;border:2px dashed var(--deny)}
.legend i.net{background:#0d9488}.legend i.dns{background:#7c3aed}.legend i.deny{background:var(--deny)}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line);
font-size:13px}
th{text-align:left;background:#f8fafc;color:#475569;font-weight:600;border-bottom:1px solid var(--line);
position:sticky;top:0}
.scroll{max-height:560px;overflow:auto;border:1px solid var(--line)}.scroll table{border:0}
th,td{padding:4px 8px;vertical-align:top}
td{border-top:1px solid #f1f5f9;overflow-wrap:anywhere}
td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.mono{white-space:nowrap}
td.path{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px}
tr.ev td:first-child{box-shadow:inset 4px 0 0 var(--sev)}
tr.ev{background:#fff7ed}
.deny{color:var(--deny);font-weight:600}.allow{color:var(--ok)}
.tag{font-size:11px;padding:0 5px;border-radius:3px;background:#fee2e2;color:#991b1b;
margin-left:4px;white-space:nowrap}
.chip{display:inline-block;font-size:11px;color:#fff;background:var(--sev);padding:0 6px;
border-radius:3px;margin:1px 2px;white-space:nowrap}
h4{margin:18px 0 6px;font-size:14px}
.more{color:var(--mute);font-style:italic;margin:4px 0}
table.records td{font-size:12.5px}
table.records tr.ctx td{color:#64748b}
table.records tr.gap td{text-align:center;color:#94a3b8;background:#f8fafc;font-style:italic}
table.records tr:target td{background:#dbeafe}
svg .edge{fill:none;stroke:#94a3b8;stroke-width:1.5}
svg .edge.refused{stroke:var(--deny);stroke-dasharray:4 3}
g.proc .frame{fill:#fff;stroke:#cbd5e1}g.proc .bar{fill:#cbd5e1}
g.proc.ev .frame{fill:color-mix(in srgb,var(--sev) 9%,#fff);stroke:var(--sev);stroke-width:2}
g.proc.ev .bar{fill:var(--sev)}
g.refused .frame{fill:#fef2f2;stroke:var(--deny);stroke-width:1.5;stroke-dasharray:6 3}
svg .prog{font-weight:600;font-size:13px;fill:var(--ink)}
svg .pid{font-size:12px;fill:var(--mute)}svg .cmd{font-size:11.5px;fill:#334155}
svg .sev{font-size:11px;font-weight:700;fill:var(--sev);letter-spacing:.05em}
svg .deny{fill:var(--deny)}svg .note{font-size:12px;fill:var(--mute);font-style:italic}
svg a{fill:#1d4ed8}
svg .track{fill:#e2e8f0;fill-opacity:.4}svg .tick{stroke:#e2e8f0}
svg .axis{font-size:11px;fill:var(--mute)}svg .label{font-size:12px;fill:#334155}
svg .lane .mark{fill:var(--sev)}svg .lane.refusals .mark{fill:var(--deny)}
svg .lane.net .mark{fill:#0d9488}svg .lane.dns .mark{fill:#7c3aed}
svg .lane .mark.denied{fill:var(--deny)}
footer{max-width:1240px;margin:30px auto;padding:12px 24px;color:var(--mute);font-size:12px;
border-top:1px solid var(--line)}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (1234567, "1,234,567"),
        ];
        for (n, want) in cases {
            assert_eq!(thousands(n), want);
        }
    }
}
