//! Warden's supervisor: runs a command in a session that the kernel watches and confines.
//!
//! The binary (`src/main.rs`, `src/cli/`) is a thin CLI over the public modules; the
//! integration tests use the record types (re-exported from `warden-records`) and a few
//! helpers. What only a session uses inside (the pipeline, the exec gate, the launcher's
//! spawn, cgroups, ...) is private to the crate.

pub use warden_policy::exec as exec_policy;
pub use warden_records::{action_view, audit_log, clock, events, process_tree, verify};
pub(crate) mod agent_api;
pub mod agent_guard;
pub mod approvals;
pub mod approvals_cli;
pub(crate) mod cgroup;
pub(crate) mod cloud_bundle;
pub mod credentials;
pub mod credentials_cli;
pub(crate) mod decode;
#[cfg(test)]
mod docs_agree;
pub mod doctor;
pub(crate) mod exec_gate;
pub(crate) mod file_activity;
pub(crate) mod folding;
pub(crate) mod freezer;
pub mod kernel;
pub(crate) mod launch;
pub(crate) mod layers;
pub mod live_triage;
pub mod live_view;
pub mod log_view;
pub mod network;
pub mod otlp;
pub mod peer;
pub(crate) mod pipeline;
pub mod recovery;
pub mod replay;
pub mod requirements_cli;
pub(crate) mod requirements_watch;
pub mod service;
pub mod session;
pub mod settings;
pub mod signals;
pub mod target_user;
pub(crate) mod tls;
pub(crate) mod tool_calls;
pub(crate) mod vcs_protection;
