//! Warden's record model: what a session's audit log holds and how it is written, read and
//! checked. The supervisor writes it; replay, the tests and triage read it.
pub mod action_view;
pub mod audit_log;
pub mod clock;
pub mod events;
pub mod process_tree;
pub mod verify;
