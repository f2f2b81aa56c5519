//! Warden's supervisor: runs a command in a session that the kernel watches and confines.
//!
//! The binary (`src/main.rs`) is a thin CLI over these modules; integration tests use the
//! record types and the process-tree builder directly.

pub use warden_policy::exec as exec_policy;
pub use warden_records::{audit_log, clock, events, process_tree, verify};
pub mod agent_api;
pub mod approvals;
pub mod approvals_cli;
pub mod cgroup;
pub mod cloud_bundle;
pub mod decode;
#[cfg(test)]
mod docs_agree;
pub mod doctor;
pub mod exec_gate;
pub mod file_activity;
pub mod folding;
pub mod kernel;
pub mod launch;
pub mod layers;
pub mod log_view;
pub mod network;
pub mod otlp;
pub mod pipeline;
pub mod recovery;
pub mod replay;
pub mod requirements_cli;
pub mod requirements_watch;
pub mod session;
pub mod settings;
pub mod signals;
pub mod target_user;
pub mod tls;
pub mod tool_calls;
pub mod vcs_protection;
