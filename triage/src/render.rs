//! Findings for a person: one block per finding, most severe first.
use std::fmt::Write as _;

use warden_records::events::{Record, escape::for_terminal, render};

use crate::{
    finding::{Review, ReviewStatus},
    triage::Report,
};

/// The record a narrative points at, as one line (escaped for a terminal), bounded.
pub fn what(r: &Record) -> String {
    bounded(render::line(r))
}

/// A record's line cut to 160 characters (then `...`).
pub fn bounded(line: String) -> String {
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
        // A baseline's deviation has no technique: no empty brackets.
        let techniques = if f.techniques.is_empty() {
            String::new()
        } else {
            format!("  [{}]", f.techniques.join(", "))
        };
        let _ = writeln!(
            out,
            "\n{:8} {}{techniques}\n  {}\n  evidence: seq {}{more}",
            f.severity.as_str().to_uppercase(),
            f.detection,
            f.narrative,
            evidence.join(", ")
        );
        if let Some(r) = &f.review {
            review(&mut out, r);
        }
    }
    out
}

/// The AI reviewer's word on a finding, in a line or two.
fn review(out: &mut String, r: &Review) {
    let reason = r.reason.as_deref().map(for_terminal);
    match r.status {
        ReviewStatus::NeedsReview => {
            let _ = writeln!(out, "  NEEDS REVIEW: {}", reason.unwrap_or_default());
        }
        ReviewStatus::Reviewed => {
            let mut about: Vec<String> = r.verdict.iter().map(|v| v.to_string()).collect();
            if let Some(s) = r.raised_from {
                about.push(format!("raised from {s}"));
            }
            let about = if about.is_empty() {
                String::new()
            } else {
                format!(" ({})", about.join(", "))
            };
            let narrative = r
                .narrative
                .as_deref()
                .map_or("no narrative".into(), for_terminal);
            let _ = writeln!(out, "  reviewer{about}: {narrative}");
            if let Some(reason) = reason {
                let _ = writeln!(out, "  reviewer note: {reason}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{ReviewVerdict, Severity};

    #[test]
    fn a_review_is_shown_briefly_and_escaped() {
        let finding = crate::finding::sample;
        let report = Report {
            session: "s1".into(),
            records: 10,
            findings: vec![
                finding(Some(Review {
                    status: ReviewStatus::Reviewed,
                    verdict: Some(ReviewVerdict::Malicious),
                    narrative: Some("a reverse shell\u{1b}[2J".into()),
                    raised_from: Some(Severity::Medium),
                    reason: Some("severity high asked for is not a raise".into()),
                })),
                finding(Some(Review::needs_review("timed out".into()))),
                finding(None),
            ],
        };
        let text = text(&report);
        assert!(
            text.contains(
                "  reviewer (malicious, raised from medium): a reverse shell\\u{1b}[2J\n  \
                 reviewer note: severity high asked for is not a raise\n"
            ),
            "{text}"
        );
        assert!(text.contains("  NEEDS REVIEW: timed out\n"), "{text}");
        assert_eq!(text.matches("reviewer").count(), 2, "{text}");
    }
}
