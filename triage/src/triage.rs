//! One session's records through the detection library.
use serde::Serialize;
use warden_records::events::{Event, Record};

use crate::{
    detections::{DETECTIONS, Detection, Matcher, Paths, matches},
    finding::{Finding, FindingSource, calls, ranges},
};

/// What triage says about one session.
#[derive(Debug, Serialize)]
pub struct Report {
    pub session: String,
    pub records: u64,
    /// Most severe first.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Adds findings of other sources (Sigma rules, the baseline), keeping the most severe
    /// first.
    pub fn add(&mut self, findings: impl IntoIterator<Item = Finding>) {
        self.findings.extend(findings);
        self.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    }
}

/// The findings of one session's records (in `seq` order, as the log holds them).
pub fn triage(records: &[Record]) -> Report {
    let start = records.iter().find_map(|r| match &r.event {
        Event::SessionStart(s) => Some(s),
        _ => None,
    });
    let home = start
        .map(|s| s.home.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| guess_home(start.map(|s| s.user.as_str()).unwrap_or("")));
    let workspace = start.map(|s| s.workspace.clone()).unwrap_or_default();
    let paths = Paths {
        home: &home,
        workspace: &workspace,
    };
    let mut findings: Vec<Finding> = DETECTIONS
        .iter()
        .filter_map(|d| detect(d, records, &paths))
        .collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Report {
        session: records
            .first()
            .map(|r| r.session.clone())
            .unwrap_or_default(),
        records: records.len() as u64,
        findings,
    }
}

/// Logs of older versions do not say where home was: the usual place for the user.
fn guess_home(user: &str) -> String {
    match user {
        "root" => "/root".into(),
        "" => String::new(),
        u => format!("/home/{u}"),
    }
}

fn detect(d: &Detection, records: &[Record], paths: &Paths) -> Option<Finding> {
    let hits: Vec<&Record> = records
        .iter()
        .filter(|r| matches(d, &r.event, paths))
        .collect();
    let calls: u64 = hits.iter().map(|r| calls(&r.event)).sum();
    let fired = match d.matcher {
        Matcher::Count { at_least, .. } => calls >= at_least,
        Matcher::Burst {
            at_least,
            window_ns,
        } => burst(&hits, at_least, window_ns),
        _ => !hits.is_empty(),
    };
    if !fired {
        return None;
    }
    let seqs: Vec<u64> = hits.iter().map(|r| r.seq).collect();
    Some(Finding {
        detection: d.id.to_string(),
        source: FindingSource::Builtin,
        severity: d.severity,
        techniques: d.techniques.iter().map(|t| t.to_string()).collect(),
        narrative: format!(
            "{} ({} time{}, first at seq {}: {})",
            d.what,
            calls,
            if calls == 1 { "" } else { "s" },
            hits[0].seq,
            crate::render::what(hits[0])
        ),
        count: calls,
        evidence: ranges(&seqs),
    })
}

/// Whether `at_least` of the records fall within `window_ns` of each other.
fn burst(hits: &[&Record], at_least: u64, window_ns: u64) -> bool {
    let n = at_least as usize;
    n > 0
        && hits.len() >= n
        && hits
            .windows(n)
            .any(|w| w[n - 1].boot_ns.saturating_sub(w[0].boot_ns) <= window_ns)
}
