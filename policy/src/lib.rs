//! Warden's policy decisions, pure: given what a request is and what the session allows, what
//! is decided and why. No kernel, no I/O but reading a binary to recognise it; table-driven
//! unit tests. The supervisor applies the decisions (exec gate, approvals, DNS proxy, kernel
//! maps).
pub mod approval;
pub mod environment;
pub mod exec;
pub mod network;
pub mod risk;
