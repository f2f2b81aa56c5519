//! Security triage of recorded sessions: a library of detections of what an honest coding task
//! does not do, run over a session's records, each finding with its severity, its MITRE ATT&CK
//! techniques and the records that are its evidence; a platform team's own rules in Sigma
//! format over the same records; deviations from what earlier sessions of the same workspace
//! did (baselines); optionally reviewed by an AI reviewer that can raise and explain a finding,
//! never remove or lower one.
mod baseline;
mod correlations;
mod detections;
mod dns_names;
mod engine;
mod finding;
mod html;
mod lineage;
mod ocsf;
mod redact;
mod render;
mod reviewer;
mod sigma;
mod triage;

pub use baseline::{
    Baseline, BaselineError, BaselineState, Baselines, Feature, LEARNING_SESSIONS, Learnt,
    QUIET_SESSIONS,
};
pub use detections::{DETECTIONS, Detection};
pub use engine::Engine;
pub use finding::{
    Finding, FindingSource, Review, ReviewStatus, ReviewVerdict, SeqRange, Severity,
};
pub use html::html;
pub use ocsf::{OCSF_VERSION, detection_findings};
pub use render::text;
pub use reviewer::{ReviewError, Reviewer};
pub use sigma::{RuleError, SigmaError, SigmaRules, Skipped};
pub use triage::{Report, triage};
