//! Findings for a person: one block per finding, most severe first.
use std::fmt::Write as _;

use warden_records::events::{Record, render};

use crate::triage::Report;

/// The record a narrative points at, as one line (escaped for a terminal), bounded.
pub fn what(r: &Record) -> String {
    let line = render::line(r);
    match line.char_indices().nth(160) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line,
    }
}

/// Evidence ranges a person reads in the terminal; the rest are counted.
const MAX_RANGES: usize = 12;

/// The report as text.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "session {}: {} records, {} finding{}",
        r.session,
        r.records,
        r.findings.len(),
        if r.findings.len() == 1 { "" } else { "s" }
    );
    for f in &r.findings {
        let evidence: Vec<String> = f
            .evidence
            .iter()
            .take(MAX_RANGES)
            .map(|e| {
                if e.first == e.last {
                    e.first.to_string()
                } else {
                    format!("{}-{}", e.first, e.last)
                }
            })
            .collect();
        let more = match f.evidence.len().saturating_sub(MAX_RANGES) {
            0 => String::new(),
            n => format!(" and {n} more ranges (--json has them all)"),
        };
        let _ = writeln!(
            out,
            "\n{:8} {}  [{}]\n  {}\n  evidence: seq {}{more}",
            f.severity.as_str().to_uppercase(),
            f.detection,
            f.techniques.join(", "),
            f.narrative,
            evidence.join(", ")
        );
    }
    out
}
