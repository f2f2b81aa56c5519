//! The records the page shows: each finding's evidence (the first record of each range, then
//! the others, up to a bound) with a few records around it, in log order, each row with the id
//! `seq-N` that the rest of the page links to.
use std::{
    collections::{BTreeSet, HashSet},
    fmt::Write as _,
};

use warden_records::events::{Record, render};

use super::{Page, escape::text, thousands, titled};
use crate::{
    finding::{Finding, SeqRange, Severity},
    triage::Report,
};

/// Most evidence records shown for one finding.
const PER_FINDING: usize = 40;
/// Most evidence records shown in all (the most severe findings' first).
const MAX_EVIDENCE: usize = 400;
/// Records shown before and after each evidence record.
const CONTEXT: usize = 2;
/// Most characters of a record's line.
const LINE_MAX: usize = 400;

/// Which findings each record is evidence of.
pub struct Evidence {
    /// Per finding (in the report's order): its severity and its ranges, sorted and disjoint.
    findings: Vec<(Severity, Vec<SeqRange>)>,
}

impl Evidence {
    pub fn new(findings: &[Finding]) -> Self {
        Evidence {
            findings: findings
                .iter()
                .map(|f| (f.severity, disjoint(&f.evidence)))
                .collect(),
        }
    }

    /// The findings (their indices in the report) that `seq` is evidence of.
    pub fn of(&self, seq: u64) -> impl Iterator<Item = usize> + '_ {
        self.findings
            .iter()
            .enumerate()
            .filter(move |(_, (_, ranges))| {
                let i = ranges.partition_point(|r| r.last < seq);
                ranges.get(i).is_some_and(|r| r.first <= seq)
            })
            .map(|(i, _)| i)
    }

    /// The most severe finding `seq` is evidence of.
    pub fn worst(&self, seq: u64) -> Option<Severity> {
        self.of(seq).map(|i| self.findings[i].0).max()
    }
}

/// Ranges sorted and merged where they overlap (a rule of another source may give them in any
/// order), so that one binary search finds a seq.
fn disjoint(ranges: &[SeqRange]) -> Vec<SeqRange> {
    let mut sorted: Vec<SeqRange> = ranges
        .iter()
        .filter(|r| r.first <= r.last)
        .copied()
        .collect();
    sorted.sort_by_key(|r| r.first);
    let mut out: Vec<SeqRange> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(prev) if r.first <= prev.last.saturating_add(1) => {
                prev.last = prev.last.max(r.last)
            }
            _ => out.push(r),
        }
    }
    out
}

/// The records the page shows with an id: a link is made only where its target is.
pub struct Anchors(HashSet<u64>);

impl Anchors {
    /// `label` (HTML) linked to record `seq` when the page shows it, else as it is.
    pub fn link(&self, seq: u64, label: &str) -> String {
        if self.0.contains(&seq) {
            format!("<a href=\"#seq-{seq}\">{label}</a>")
        } else {
            label.to_string()
        }
    }

    pub fn has(&self, seq: u64) -> bool {
        self.0.contains(&seq)
    }
}

/// The rows of the evidence table: positions in the log, ascending.
pub struct Excerpt {
    rows: Vec<usize>,
    /// Some finding has more evidence records than are shown.
    bounded: bool,
}

impl Excerpt {
    pub fn choose(report: &Report, records: &[Record]) -> Self {
        let wanted = wanted(report);
        let mut seen = HashSet::new();
        let mut rows = BTreeSet::new();
        let last = records.len().saturating_sub(1);
        for (i, r) in records.iter().enumerate() {
            // A damaged log may repeat a seq: its first record is the one shown.
            if wanted.contains(&r.seq) && seen.insert(r.seq) {
                rows.extend(i.saturating_sub(CONTEXT)..=(i + CONTEXT).min(last));
            }
        }
        let bounded = report.findings.iter().any(|f| {
            let n: u64 = f
                .evidence
                .iter()
                .map(|r| r.last.saturating_sub(r.first) + 1)
                .sum();
            n > PER_FINDING as u64
        }) || wanted.len() >= MAX_EVIDENCE;
        Excerpt {
            rows: rows.into_iter().collect(),
            bounded,
        }
    }

    pub fn anchors(&self, records: &[Record]) -> Anchors {
        Anchors(self.rows.iter().map(|&i| records[i].seq).collect())
    }

    pub fn section(&self, page: &Page) -> String {
        let mut body = String::from(
            "<table class=\"records\"><thead><tr><th>seq</th><th>time</th><th>kind</th>\
             <th>record</th><th>evidence of</th></tr></thead><tbody>",
        );
        let mut ids = HashSet::new();
        let mut next = 0;
        for &i in &self.rows {
            gap(&mut body, i - next);
            row(
                &mut body,
                page,
                &page.records[i],
                ids.insert(page.records[i].seq),
            );
            next = i + 1;
        }
        gap(&mut body, page.records.len() - next);
        body.push_str("</tbody></table>");
        let about = if self.bounded {
            format!(
                "Each finding's evidence (up to {PER_FINDING} records of each, {MAX_EVIDENCE} in \
                 all), with {CONTEXT} records before and after. <code>warden events SESSION \
                 --view json</code> shows every record."
            )
        } else {
            format!("Each finding's evidence, with {CONTEXT} records before and after.")
        };
        titled("records", "Evidence records", &about, &body)
    }
}

/// The seqs to show: of each finding, most severe first, the first record of each range,
/// then the rest in order, up to the bounds.
fn wanted(report: &Report) -> HashSet<u64> {
    let mut out = HashSet::new();
    for f in &report.findings {
        let firsts = f.evidence.iter().map(|r| r.first);
        let rest = f
            .evidence
            .iter()
            .flat_map(|r| r.first.saturating_add(1)..=r.last);
        for seq in firsts.chain(rest).take(PER_FINDING) {
            if out.len() >= MAX_EVIDENCE {
                return out;
            }
            out.insert(seq);
        }
    }
    out
}

/// The row that stands for `n` records left out.
fn gap(out: &mut String, n: usize) {
    if n > 0 {
        let _ = write!(
            out,
            "<tr class=\"gap\"><td colspan=\"5\">&#8942; {} not shown</td></tr>",
            if n == 1 {
                "1 record".to_string()
            } else {
                format!("{} records", thousands(n as u64))
            }
        );
    }
}

/// One record: evidence rows coloured by their worst finding, the others dimmed.
fn row(out: &mut String, page: &Page, r: &Record, with_id: bool) {
    let findings: Vec<usize> = page.evidence.of(r.seq).collect();
    let class = match page.evidence.worst(r.seq) {
        Some(s) => format!("ev {}", s.as_str()),
        None => "ctx".to_string(),
    };
    let id = if with_id {
        format!(" id=\"seq-{}\"", r.seq)
    } else {
        String::new()
    };
    let chips: String = findings
        .iter()
        .map(|&i| {
            let f = &page.report.findings[i];
            format!(
                "<a class=\"chip {}\" href=\"#finding-{i}\">{}</a>",
                f.severity.as_str(),
                text(&f.detection, 60)
            )
        })
        .collect();
    let _ = write!(
        out,
        "<tr class=\"{class}\"{id}><td class=\"n\">{}</td><td class=\"mono\">{}</td>\
         <td class=\"mono\">{}</td><td class=\"path\">{}</td><td>{chips}</td></tr>",
        r.seq,
        text(r.time.get(11..23).unwrap_or(&r.time), 40),
        r.event.kind(),
        text(&render::details(r), LINE_MAX)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_ranges_are_found_in_any_order() {
        let r = |a, b| SeqRange { first: a, last: b };
        let f = Finding {
            detection: "x".into(),
            source: crate::FindingSource::Sigma,
            severity: Severity::High,
            techniques: vec![],
            narrative: String::new(),
            count: 1,
            evidence: vec![r(20, 25), r(3, 4), r(5, 8), r(24, 30), r(9, 7)],
            review: None,
        };
        assert_eq!(disjoint(&f.evidence), vec![r(3, 8), r(20, 30)]);
        let e = Evidence::new(&[f]);
        let hits: Vec<u64> = (0..40).filter(|&s| e.of(s).next().is_some()).collect();
        let want: Vec<u64> = (3..=8).chain(20..=30).collect();
        assert_eq!(hits, want);
        assert_eq!(e.worst(21), Some(Severity::High));
        assert_eq!(e.worst(9), None);
    }
}
