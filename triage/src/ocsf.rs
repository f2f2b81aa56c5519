//! Findings as OCSF Detection Finding events (class 2004, OCSF 1.1), for a SIEM: one event per
//! finding, with its ATT&CK techniques and the log's seq ranges as evidence.
use serde_json::{Value, json};

use crate::{
    finding::{Finding, FindingSource, Severity},
    triage::Report,
};

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.1.0";
/// Findings (category 2), Detection Finding (class 2004), activity Create (1).
const CATEGORY_UID: u32 = 2;
const CLASS_UID: u32 = 2004;
const ACTIVITY_CREATE: u32 = 1;
/// Status New.
const STATUS_NEW: u32 = 1;

/// OCSF analytic types: a rule (Warden's or Sigma), or behaviour against a baseline.
fn analytic_type_id(s: FindingSource) -> u32 {
    match s {
        FindingSource::Builtin | FindingSource::Sigma => 1,
        FindingSource::Baseline => 2,
    }
}

fn severity_id(s: Severity) -> u32 {
    match s {
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// One OCSF event per finding; `time_ms` is when triage ran, `log` where the evidence is.
pub fn detection_findings(report: &Report, time_ms: i64, log: &str) -> Vec<Value> {
    report
        .findings
        .iter()
        .map(|f| event(report, f, time_ms, log))
        .collect()
}

fn event(report: &Report, f: &Finding, time_ms: i64, log: &str) -> Value {
    let evidence: Vec<Value> = f
        .evidence
        .iter()
        .map(|r| json!({ "data": { "log": log, "first_seq": r.first, "last_seq": r.last } }))
        .collect();
    let mut event = json!({
        "category_uid": CATEGORY_UID,
        "class_uid": CLASS_UID,
        "activity_id": ACTIVITY_CREATE,
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "severity_id": severity_id(f.severity),
        "severity": f.severity.as_str(),
        "status_id": STATUS_NEW,
        "time": time_ms,
        "message": f.narrative,
        "metadata": {
            "version": OCSF_VERSION,
            "product": { "name": "Warden", "vendor_name": "Warden" },
            "correlation_uid": report.session,
        },
        "finding_info": {
            "uid": format!("{}/{}", report.session, f.detection),
            "title": f.detection,
            "desc": f.narrative,
            "analytic": {
                "name": f.detection,
                "uid": f.detection,
                "type_id": analytic_type_id(f.source),
                "category": f.source.as_str(),
            },
            "attacks": f.techniques.iter().map(|t| json!({ "technique": { "uid": t } })).collect::<Vec<_>>(),
        },
        "evidences": evidence,
        "count": f.count,
    });
    // OCSF has no field for a second opinion on a finding: Warden's own, under `unmapped`.
    if let Some(review) = &f.review {
        event["unmapped"] = json!({ "review": review });
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Review, ReviewStatus, ReviewVerdict, SeqRange};

    #[test]
    fn a_finding_is_a_detection_finding() {
        let report = Report {
            session: "s1".into(),
            records: 10,
            findings: vec![Finding {
                detection: "credential-files-read".into(),
                source: crate::FindingSource::Builtin,
                severity: Severity::High,
                techniques: vec!["T1552.001".into(), "T1552.004".into()],
                narrative: "opened ~/.ssh/id_rsa".into(),
                count: 2,
                evidence: vec![SeqRange { first: 3, last: 4 }],
                review: None,
            }],
        };
        let events = detection_findings(&report, 1_800_000_000_000, "/var/lib/warden/x.jsonl");
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e["class_uid"], 2004);
        assert_eq!(e["category_uid"], 2);
        assert_eq!(e["type_uid"], 200401);
        assert_eq!(e["severity_id"], 4);
        assert_eq!(e["metadata"]["version"], "1.1.0");
        assert_eq!(e["finding_info"]["uid"], "s1/credential-files-read");
        assert_eq!(
            e["finding_info"]["attacks"][1]["technique"]["uid"],
            "T1552.004"
        );
        assert_eq!(e["evidences"][0]["data"]["first_seq"], 3);
        assert_eq!(e["evidences"][0]["data"]["last_seq"], 4);
        let ids: Vec<u64> = [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .map(|s| u64::from(severity_id(s)))
        .to_vec();
        assert_eq!(ids, vec![2, 3, 4, 5]);
        assert!(e.get("unmapped").is_none(), "no review, nothing unmapped");
    }

    #[test]
    fn a_review_is_carried_unmapped() {
        let finding = crate::finding::sample;
        let report = Report {
            session: "s1".into(),
            records: 10,
            findings: vec![
                finding(Some(Review {
                    status: ReviewStatus::Reviewed,
                    verdict: Some(ReviewVerdict::Malicious),
                    narrative: Some("a reverse shell".into()),
                    raised_from: Some(Severity::Medium),
                    reason: None,
                })),
                finding(Some(Review::needs_review("timed out".into()))),
            ],
        };
        let events = detection_findings(&report, 0, "x.jsonl");
        let r = &events[0]["unmapped"]["review"];
        assert_eq!(r["status"], "reviewed");
        assert_eq!(r["verdict"], "malicious");
        assert_eq!(r["narrative"], "a reverse shell");
        assert_eq!(r["raised_from"], "medium");
        assert!(r.get("reason").is_none());
        assert_eq!(events[0]["severity"], "high");
        let r = &events[1]["unmapped"]["review"];
        assert_eq!(r["status"], "needs-review");
        assert_eq!(r["reason"], "timed out");
    }
}
