//! Security triage of recorded sessions: a library of detections of what an honest coding task
//! does not do, run over a session's records, each finding with its severity, its MITRE ATT&CK
//! techniques and the records that are its evidence.
mod detections;
mod finding;
mod html;
mod ocsf;
mod render;
mod triage;

pub use detections::{DETECTIONS, Detection};
pub use finding::{Finding, FindingSource, SeqRange, Severity};
pub use html::html;
pub use ocsf::{OCSF_VERSION, detection_findings};
pub use render::text;
pub use triage::{Report, triage};
