//! Security triage of recorded sessions: a library of detections of what an honest coding task
//! does not do, run over a session's records, each finding with its severity, its MITRE ATT&CK
//! techniques and the records that are its evidence; and a platform team's own rules in Sigma
//! format over the same records.
mod detections;
mod finding;
mod ocsf;
mod render;
mod sigma;
mod triage;

pub use detections::{DETECTIONS, Detection};
pub use finding::{Finding, FindingSource, SeqRange, Severity};
pub use ocsf::{OCSF_VERSION, detection_findings};
pub use render::text;
pub use sigma::{RuleError, SigmaError, SigmaRules, Skipped};
pub use triage::{Report, triage};
