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
            .map(|e| {
                if e.first == e.last {
                    e.first.to_string()
                } else {
                    format!("{}-{}", e.first, e.last)
                }
            })
            .collect();
        // A baseline's deviation has no technique: no empty brackets.
        let techniques = if f.techniques.is_empty() {
            String::new()
        } else {
            format!("  [{}]", f.techniques.join(", "))
        };
        let _ = writeln!(
            out,
            "\n{:8} {}{techniques}\n  {}\n  evidence: seq {}",
            f.severity.as_str().to_uppercase(),
            f.detection,
            f.narrative,
            evidence.join(", ")
        );
    }
    out
}
