//! One session's records through the detection library.
use serde::Serialize;
use warden_records::events::{Event, Record, SessionStart};

use crate::{engine::Engine, finding::Finding};

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
    // File calls are logged when folded, up to a second late: the detections see the records
    // in the order things happened.
    let mut by_time: Vec<&Record> = records.iter().collect();
    by_time.sort_by_key(|r| r.boot_ns);
    let mut engine = Engine::new(session_start(records));
    for r in by_time {
        engine.push(r);
    }
    Report {
        session: records
            .first()
            .map(|r| r.session.clone())
            .unwrap_or_default(),
        records: records.len() as u64,
        findings: engine.findings(),
    }
}

/// The session's `session.start`, which says whose session it was and where.
pub(crate) fn session_start(records: &[Record]) -> Option<&SessionStart> {
    records.iter().find_map(|r| match &r.event {
        Event::SessionStart(s) => Some(s.as_ref()),
        _ => None,
    })
}
