//! What triage reports: a finding, its severity, its ATT&CK techniques, and the records that
//! are its evidence as ranges of `seq`.
use serde::Serialize;
use warden_records::events::{Event, FindingRecord, TriageAction};
use warden_wire::string_enum;

/// How much a finding matters: the scale the auto-reviewer's risks use (`low` to `critical`),
/// written once.
pub use warden_records::events::RiskLevel as Severity;
/// Where a finding came from, and its evidence as seq ranges: spelled once, in the records
/// (live triage writes them in `finding` records).
pub use warden_records::events::{FindingSource, SeqRange};

/// One detection that fired in a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The detection's id, e.g. `credential-files-read` (a Sigma rule's id or title).
    pub detection: String,
    pub source: FindingSource,
    pub severity: Severity,
    /// MITRE ATT&CK (and ATLAS) technique ids.
    pub techniques: Vec<String>,
    /// One line a responder reads first.
    pub narrative: String,
    /// How many calls matched (a folded record counts as the calls it stands for).
    pub count: u64,
    pub evidence: Vec<SeqRange>,
    /// What the AI reviewer made of it, when one ran (`--reviewer-command`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
}

impl Finding {
    /// The finding as live triage records it, with what was done about it.
    pub fn record(&self, action: TriageAction, action_source: Option<String>) -> FindingRecord {
        FindingRecord {
            detection: self.detection.clone(),
            source: self.source,
            severity: self.severity,
            techniques: self.techniques.clone(),
            narrative: self.narrative.clone(),
            count: self.count,
            evidence: self.evidence.clone(),
            action,
            action_source,
        }
    }
}

string_enum! {
    /// Whether the AI reviewer's answer for a finding was used.
    ReviewStatus, "review status" {
        /// It answered and its answer was used: it can raise the severity and explain, nothing
        /// else.
        Reviewed = "reviewed",
        /// It failed, did not answer for the finding, or its answer was not trusted: a person
        /// decides.
        NeedsReview = "needs-review",
    }
}

string_enum! {
    /// The AI reviewer's judgement of a finding.
    ReviewVerdict, "review verdict" {
        Malicious = "malicious",
        Suspicious = "suspicious",
        Inconclusive = "inconclusive",
        /// A reviewer may say so, but it clears nothing: the answer is not used and a person
        /// reviews.
        Benign = "benign",
    }
}

/// What the AI reviewer made of a finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Review {
    pub status: ReviewStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<ReviewVerdict>,
    /// The reviewer's own words, control characters removed, bounded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narrative: Option<String>,
    /// The rule's severity, when the reviewer raised it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raised_from: Option<Severity>,
    /// needs-review: why; reviewed: what of the answer was not applied, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Review {
    pub fn needs_review(reason: String) -> Self {
        Self {
            status: ReviewStatus::NeedsReview,
            verdict: None,
            narrative: None,
            raised_from: None,
            reason: Some(reason),
        }
    }
}

/// How many calls a record stands for: a folded file call or connect counts as the calls it
/// stands for.
pub fn calls(e: &Event) -> u64 {
    match e {
        Event::NetConnect(n) => n.count.max(1),
        e => e.file_access().map_or(1, |f| f.count.max(1)),
    }
}

/// `seqs` (ascending) as ranges of consecutive numbers.
pub fn ranges(seqs: &[u64]) -> Vec<SeqRange> {
    let mut out: Vec<SeqRange> = Vec::new();
    for &s in seqs {
        match out.last_mut() {
            Some(r) if r.last + 1 == s => r.last = s,
            Some(r) if r.last == s => {}
            _ => out.push(SeqRange { first: s, last: s }),
        }
    }
    out
}

/// A finding for the tests of the outputs: `nc` run, high, one record.
#[cfg(test)]
pub(crate) fn sample(review: Option<Review>) -> Finding {
    Finding {
        detection: "network-tools".into(),
        source: FindingSource::Builtin,
        severity: Severity::High,
        techniques: vec!["T1095".into()],
        narrative: "ran nc".into(),
        count: 1,
        evidence: vec![SeqRange { first: 3, last: 3 }],
        review,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_join_consecutive_records() {
        let r = |a, b| SeqRange { first: a, last: b };
        let cases: &[(&[u64], Vec<SeqRange>)] = &[
            (&[], vec![]),
            (&[4], vec![r(4, 4)]),
            (&[4, 5, 6, 9, 10, 12], vec![r(4, 6), r(9, 10), r(12, 12)]),
            (&[7, 7, 8], vec![r(7, 8)]),
        ];
        for (seqs, want) in cases {
            assert_eq!(&ranges(seqs), want, "{seqs:?}");
        }
    }
}
