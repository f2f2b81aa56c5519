//! One session's records through the detection library.
use std::collections::HashMap;

use serde::Serialize;
use warden_records::events::{Event, Record, SessionStart};

use crate::{
    detections::{DETECTIONS, Detection, Matcher, Paths, Session, denied_target, hits},
    finding::{Finding, FindingSource, calls, ranges},
    lineage::Lineage,
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
    let start = session_start(records);
    let home = home(start);
    let workspace = start.map(|s| s.workspace.clone()).unwrap_or_default();
    let paths = Paths {
        home: &home,
        workspace: &workspace,
    };
    let mut by_time: Vec<usize> = (0..records.len()).collect();
    by_time.sort_by_key(|&i| records[i].boot_ns);
    let lineage = Lineage::build(records, &by_time);
    let session = Session {
        records,
        by_time: &by_time,
        paths: &paths,
        lineage: &lineage,
    };
    let mut findings: Vec<Finding> = DETECTIONS
        .iter()
        .filter_map(|d| detect(d, &session))
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

/// The session's `session.start`, which says whose session it was and where.
pub(crate) fn session_start(records: &[Record]) -> Option<&SessionStart> {
    records.iter().find_map(|r| match &r.event {
        Event::SessionStart(s) => Some(s.as_ref()),
        _ => None,
    })
}

/// The home directory paths are judged against.
pub(crate) fn home(start: Option<&SessionStart>) -> String {
    start
        .map(|s| s.home.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| guess_home(start.map(|s| s.user.as_str()).unwrap_or("")))
}

/// Logs of older versions do not say where home was: the usual place for the user.
fn guess_home(user: &str) -> String {
    match user {
        "root" => "/root".into(),
        "" => String::new(),
        u => format!("/home/{u}"),
    }
}

fn detect(d: &Detection, s: &Session) -> Option<Finding> {
    let hits: Vec<&Record> = hits(d, s).into_iter().map(|i| &s.records[i]).collect();
    let calls: u64 = hits.iter().map(|r| calls(&r.event)).sum();
    let fired = match d.matcher {
        Matcher::Count { at_least, .. } => calls >= at_least,
        Matcher::Burst {
            at_least,
            window_ns,
        } => {
            let mut in_time = hits.clone();
            in_time.sort_by_key(|r| r.boot_ns);
            burst(&in_time, at_least, window_ns)
        }
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
        review: None,
    })
}

/// Whether `at_least` different things were refused within `window_ns` (the records are
/// denials, in time order).
fn burst(hits: &[&Record], at_least: u64, window_ns: u64) -> bool {
    let keys: Vec<String> = hits
        .iter()
        .map(|r| denied_target(&r.event).unwrap_or_default())
        .collect();
    let mut in_window: HashMap<&str, usize> = HashMap::new();
    let mut start = 0;
    for (end, r) in hits.iter().enumerate() {
        *in_window.entry(&keys[end]).or_default() += 1;
        while r.boot_ns.saturating_sub(hits[start].boot_ns) > window_ns {
            let k = keys[start].as_str();
            if let Some(n) = in_window.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    in_window.remove(k);
                }
            }
            start += 1;
        }
        if in_window.len() as u64 >= at_least {
            return true;
        }
    }
    false
}
